/** Byte sizes the tests share, so each is written once. */
export const MIB = 1024 * 1024;
