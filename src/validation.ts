// The one zod the service uses: zod/mini, much smaller resident than full zod. It starts with no
// messages ("Invalid input" for everything); English ones, as full zod has, whichever module
// parses first.

import { en } from "zod/locales";
import * as z from "zod/mini";

z.config(en());

export { z };
