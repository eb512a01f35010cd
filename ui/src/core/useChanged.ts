import { useState } from "react";

/**
 * True during the render in which `key` differs from the one before (false on
 * the first). A component resets its state on that render (React's "adjusting
 * state when a prop changes"), instead of in an effect: no frame shows the old
 * object's data under the new one's name, and no second render cascades.
 */
export function useChanged(key: string): boolean {
  const [seen, setSeen] = useState(key);
  if (seen === key) return false;
  setSeen(key);
  return true;
}
