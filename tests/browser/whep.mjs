// Plays a live channel over WHEP in Debian's headless Chromium.
//
//   node whep.mjs WHEP_URL TOKEN SECONDS
//
// Opens a page on the server's origin, makes a recvonly RTCPeerConnection, POSTs its offer to
// WHEP_URL with the token, plays the remote track through a WebAudio analyser for SECONDS, then
// DELETEs the session. Prints one JSON object: the connection state, the audio's peak level,
// the time from POST to the first non-silent analyser frame, and getStats()'s inbound-rtp
// counters (packets received and lost, jitter). Exits non-zero when nothing was heard.
import { onPage } from './chromium.mjs';

const [whep, token, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!whep || !token || !seconds) {
  console.error('usage: node whep.mjs WHEP_URL TOKEN SECONDS');
  process.exit(2);
}
const result = await onPage(new URL('/healthz', whep).href, async ({ whep, token, seconds }) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const ctx = new AudioContext();
  let peak = 0;
  let firstAudioMs = null;
  const gotTrack = new Promise((resolve) => {
    pc.ontrack = (e) => resolve(e.track);
  });
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  // Wait for host candidates so the offer is complete (no trickle needed on loopback).
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
    setTimeout(resolve, 2000);
  });
  const posted = performance.now();
  const r = await fetch(whep, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  if (r.status !== 201) return { status: r.status, body: await r.text() };
  const location = new URL(r.headers.get('location'), whep).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  const track = await gotTrack;
  // Chromium routes remote WebRTC audio to WebAudio only while an element plays the stream.
  const stream = new MediaStream([track]);
  const el = new Audio();
  el.srcObject = stream;
  el.muted = true;
  await el.play().catch(() => {});
  const src = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  src.connect(analyser);
  await ctx.resume();
  const buf = new Float32Array(analyser.fftSize);
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    analyser.getFloatTimeDomainData(buf);
    let p = 0;
    for (const v of buf) p = Math.max(p, Math.abs(v));
    if (p > 0.01 && firstAudioMs === null) firstAudioMs = performance.now() - posted;
    peak = Math.max(peak, p);
    await new Promise((res) => setTimeout(res, 50));
  }
  let inbound = {};
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') inbound = s;
  });
  const state = pc.connectionState;
  const del = await fetch(location, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  pc.close();
  return {
    status: r.status,
    state,
    peak,
    firstAudioMs,
    packetsReceived: inbound.packetsReceived ?? 0,
    packetsLost: inbound.packetsLost ?? 0,
    jitter: inbound.jitter ?? null,
    deleteStatus: del.status,
  };
}, { whep, token, seconds });
console.log(JSON.stringify(result));
process.exit(result.peak > 0.01 ? 0 : 1);
