// A destructive action asked twice: the button turns into the question, with the action and
// Cancel; focus goes to the action, and back to the button after Cancel.
import { useEffect, useRef, useState } from 'preact/hooks';

export function ConfirmButton({ label, question, action, onConfirm, disabled = false, aria = undefined }) {
  const [asking, setAsking] = useState(false);
  const was = useRef(false);
  const yes = useRef(null);
  const trigger = useRef(null);
  useEffect(() => {
    if (asking && yes.current) yes.current.focus();
    if (!asking && was.current && trigger.current) trigger.current.focus();
    was.current = asking;
  }, [asking]);
  if (!asking) {
    return <button ref={trigger} type="button" disabled={disabled} aria-label={aria} onClick={() => setAsking(true)}>{label}</button>;
  }
  return (
    <span role="group" aria-label={question} class="confirm">
      <span>{question}</span>{' '}
      <button ref={yes} type="button" class="danger" onClick={async () => { was.current = false; setAsking(false); await onConfirm(); }}>{action}</button>{' '}
      <button type="button" onClick={() => setAsking(false)}>Cancel</button>
    </span>
  );
}

/** Up to four covers as one square: one fills it, more make a 2×2 mosaic. */
export function Mosaic({ covers, size = 56, label = '' }) {
  const list = (covers || []).filter(Boolean).slice(0, 4);
  if (!list.length) return <div class="cover none" aria-hidden="true" data-size={size} />;
  if (list.length < 4) return <img class="cover" src={list[0]} alt={label} width={size} height={size} />;
  return (
    <div class="cover mosaic" role={label ? 'img' : undefined} aria-label={label || undefined} aria-hidden={label ? undefined : 'true'}>
      {list.map((c) => <img key={c} src={c} alt="" />)}
    </div>
  );
}
