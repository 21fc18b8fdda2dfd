// Which variables a job file declares and which a variables file sets, read from the HCL text.
// Nomad's HTTP parse (/v1/jobs/parse) is not strict: a variable set in the file but declared
// nowhere is only a warning there, and the warning is not returned (hashicorp/nomad
// jobspec2/types.variables.go, "Undefined variable" at DiagWarning unless ParseConfig.Strict;
// command/agent/job_endpoint.go does not set Strict). A misspelt name would silently do nothing.

/** Names of the top-level `variable "<name>" { ... }` blocks. */
export function declaredVariables(jobHcl: string): string[] {
  return topLevel(jobHcl).flatMap((line) => {
    const m = /^variable\s+"([^"]+)"/.exec(line);
    return m?.[1] ? [m[1]] : [];
  });
}

/** Names assigned at the top level of a variables file (`name = value`). */
export function assignedVariables(varsHcl: string): string[] {
  return topLevel(varsHcl).flatMap((line) => {
    const m = /^([A-Za-z_][A-Za-z0-9_-]*)\s*=(?!=)/.exec(line);
    return m?.[1] ? [m[1]] : [];
  });
}

/** Variables the file sets that the job does not declare, in file order. */
export function undeclaredVariables(jobHcl: string, varsHcl: string): string[] {
  const declared = new Set(declaredVariables(jobHcl));
  return assignedVariables(varsHcl).filter((name) => !declared.has(name));
}

/**
 * The lines that start at nesting depth 0: outside braces, brackets, parentheses, strings,
 * heredocs and comments, so a `key = value` inside an object or a list is not taken for one.
 */
function topLevel(text: string): string[] {
  const lines: string[] = [];
  let depth = 0;
  let heredoc: string | undefined;
  for (const raw of text.split("\n")) {
    if (heredoc !== undefined) {
      if (raw.trim() === heredoc) heredoc = undefined;
      continue;
    }
    const line = raw.trim();
    // What starts the line once a leading /* comment */ is set aside.
    const start = line.replace(/^(\/\*.*?\*\/\s*)+/, "");
    if (depth === 0 && start !== "") lines.push(start);
    let inString = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (inString) {
        if (ch === "\\") i++;
        else if (ch === '"') inString = false;
        continue;
      }
      if (ch === '"') inString = true;
      else if (ch === "#" || (ch === "/" && line[i + 1] === "/")) break;
      else if (ch === "/" && line[i + 1] === "*") {
        const end = line.indexOf("*/", i + 2);
        if (end === -1) break;
        i = end + 1;
      } else if (ch === "{" || ch === "[" || ch === "(") depth++;
      else if (ch === "}" || ch === "]" || ch === ")") depth = Math.max(0, depth - 1);
      else if (ch === "<" && line[i + 1] === "<") {
        const m = /^<<-?([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(line.slice(i));
        if (m?.[1]) {
          heredoc = m[1];
          break;
        }
      }
    }
  }
  return lines;
}
