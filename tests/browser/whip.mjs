// Goes live over WHIP from Debian's headless Chromium with a fake microphone playing a WAV file.
//
//   node whip.mjs WHIP_URL STREAM_KEY WAV SECONDS
//
// Opens a page on the server's origin, takes getUserMedia's audio (Chromium's fake device reading
// WAV), POSTs a sendonly offer to WHIP_URL with the stream key, publishes for SECONDS, then
// DELETEs the session. Prints one JSON object: the POST status, the connection state reached,
// getStats()'s outbound-rtp packets sent, and the DELETE status. Exits non-zero when it did not
// connect or sent nothing.
import { onPage } from './chromium.mjs';

const [whip, key, wav, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!whip || !key || !wav || !seconds) {
  console.error('usage: node whip.mjs WHIP_URL STREAM_KEY WAV SECONDS');
  process.exit(2);
}
const result = await onPage(new URL('/healthz', whip).href, async ({ whip, key, seconds }) => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const pc = new RTCPeerConnection();
  pc.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendonly' });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
    setTimeout(resolve, 2000);
  });
  const r = await fetch(whip, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${key}` },
    body: pc.localDescription.sdp,
  });
  if (r.status !== 201) return { status: r.status, body: await r.text() };
  const location = new URL(r.headers.get('location'), whip).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  await new Promise((res) => setTimeout(res, seconds * 1000));
  let sent = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'audio') sent = s.packetsSent;
  });
  const state = pc.connectionState;
  const del = await fetch(location, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } });
  pc.close();
  return { status: r.status, state, packetsSent: sent, deleteStatus: del.status };
}, { whip, key, seconds }, ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  `--use-file-for-fake-audio-capture=${wav}`]);
console.log(JSON.stringify(result));
process.exit(result.state === 'connected' && result.packetsSent > 0 ? 0 : 1);
