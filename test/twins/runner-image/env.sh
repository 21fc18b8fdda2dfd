#!/bin/bash
# Stand-in for env.sh of the actions runner (actions/runner src/Misc/layoutroot/env.sh): remembers
# PATH in .path and a few tool variables in .env (which Runner.Listener loads at start), keeping
# what .env already says.

touch .env
existing=$(cat .env)
echo "$PATH" >.path
for name in LANG JAVA_HOME ANT_HOME M2_HOME ANDROID_HOME ANDROID_SDK_ROOT GRADLE_HOME NVM_BIN NVM_PATH LD_LIBRARY_PATH PERL5LIB; do
  if [[ "$existing" != *"$name="* && -n "${!name}" ]]; then
    echo "$name=${!name}" >>.env
  fi
done
