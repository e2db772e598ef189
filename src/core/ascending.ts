/** Whether each number is above the one before it (a soft limit's thresholds: ascending, each once). */
export const isAscending = (values: readonly number[] | undefined): boolean =>
  !Array.isArray(values) || values.every((value, i) => i === 0 || value > values[i - 1]!)
