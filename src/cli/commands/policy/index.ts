/** `ward policy test|validate|import`: the offline policy tools. */
import type { Command } from 'commander';
import type { CliContext, CommandRegistrar } from '../../context.js';
import { registerImport } from './import.js';
import { registerTest } from './test.js';
import { registerValidate } from './validate.js';

export const registerPolicy: CommandRegistrar = (program: Command, ctx: CliContext) => {
  const noun = program.command('policy').description('Validate, test and import policies offline');
  registerValidate(noun, ctx);
  registerTest(noun, ctx);
  registerImport(noun, ctx);
};
