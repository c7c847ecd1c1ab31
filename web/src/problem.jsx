// An API refusal shown as the problem document's title and detail.
import { Problem } from './api.js';

export function ProblemBox({ error }) {
  if (!error) return null;
  const p = error instanceof Problem ? error : new Problem(-1, 'Something went wrong', String((error && error.message) || error));
  return (
    <div class="error" role="alert">
      <strong>{p.title}</strong>
      {p.detail ? <span>: {p.detail}</span> : null}
    </div>
  );
}
