/** Node timers overflow above this many milliseconds (2^31 - 1, about 24.8 days) and fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;
