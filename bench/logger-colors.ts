/*
 * libp2p's logger (weald) decides whether to colour output by calling isatty for every
 * logger it creates, and libp2p creates loggers for every stream: with hundreds of nodes
 * in one process that was 8 % of the bench's CPU, for both systems alike. The same
 * decision, taken once, before weald loads (it reads DEBUG_COLORS when it loads).
 */
process.env.DEBUG_COLORS ??= String(process.stderr.isTTY === true)

export {}
