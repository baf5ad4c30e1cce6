// Regenerates config/schema.json from the zod schema (src/config/schema.ts). Run: npm run schema
import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../src/config/schema.ts';

const file = new URL('../config/schema.json', import.meta.url);
writeFileSync(file, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
console.log(`wrote ${file.pathname}`);
