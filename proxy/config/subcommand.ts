/**
 * The hidden subcommand the config loader child is run with (config/child.ts): its own module
 * so that proxy/main.ts can recognise it without loading the child machinery.
 */
export const LOAD_SUBCOMMAND = '__load-config';
