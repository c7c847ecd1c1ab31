// Glass-to-glass latency of a live channel in Debian's headless Chromium: WHIP in, WHEP out,
// measured with a click track on one clock.
//
//   node glass.mjs WHIP_URL STREAM_KEY WHEP_URL TOKEN SECONDS
//
// One page, one AudioContext. A 2 kHz tone behind a gain that opens for 10 ms every 500 ms is
// the click track: the click times are scheduled, sample-exact, on the context's clock. It is
// published over WHIP (Chromium's Opus encoder), goes through the channel (decoded, one Opus
// encode for every listener) and comes back over WHEP to the same page, where an AudioWorklet
// dates each click's onset on the same clock: the latency is onset minus scheduled time. It
// includes both browsers' WebRTC stacks (capture, Opus, jitter buffer, decoding) and the
// WebAudio graph, not a loudspeaker or a microphone.
//
// Prints one JSON object: clicks scheduled and heard, latency min/p50/p90/max in ms, the peak
// level heard, the listener's mean jitter-buffer delay (getStats), inbound packets received and
// lost, and the POST and DELETE statuses. Exits non-zero when no click came back.
import { onPage } from './chromium.mjs';

const [whip, key, whep, token, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!whip || !key || !whep || !token || !seconds) {
  console.error('usage: node glass.mjs WHIP_URL STREAM_KEY WHEP_URL TOKEN SECONDS');
  process.exit(2);
}
const result = await onPage(new URL('/healthz', whip).href, async ({ whip, key, whep, token, seconds }) => {
  const INTERVAL = 0.5;
  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
    setTimeout(resolve, 2000);
  });
  const ctx = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' });
  await ctx.resume();

  // The onset detector: a click is a sample above 0.1 after 200 ms with none.
  const detector = `
    class Onset extends AudioWorkletProcessor {
      constructor() { super(); this.since = 1e9; this.peak = 0; this.blocks = 0; }
      process(inputs) {
        const ch = inputs[0] && inputs[0][0];
        if (!ch) return true;
        // The loudest sample so far, once a second.
        if (++this.blocks % 375 === 0) this.port.postMessage({ peak: this.peak });
        for (let i = 0; i < ch.length; i++) {
          const a = Math.abs(ch[i]);
          this.peak = Math.max(this.peak, a);
          this.since++;
          if (a > 0.1) {
            if (this.since > 0.2 * sampleRate) {
              this.port.postMessage(currentTime + i / sampleRate);
            }
            this.since = 0;
          }
        }
        return true;
      }
    }
    registerProcessor('onset', Onset);`;
  await ctx.audioWorklet.addModule(
    URL.createObjectURL(new Blob([detector], { type: 'application/javascript' })));

  // The click track, published over WHIP.
  const osc = new OscillatorNode(ctx, { frequency: 2000 });
  const gate = new GainNode(ctx, { gain: 0 });
  const out = ctx.createMediaStreamDestination();
  osc.connect(gate).connect(out);
  osc.start();
  const pub = new RTCPeerConnection();
  pub.addTransceiver(out.stream.getAudioTracks()[0], { direction: 'sendonly' });
  await pub.setLocalDescription(await pub.createOffer());
  await gathered(pub);
  const r1 = await fetch(whip, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${key}` },
    body: pub.localDescription.sdp,
  });
  if (r1.status !== 201) return { whipStatus: r1.status, body: await r1.text() };
  const whipSession = new URL(r1.headers.get('location'), whip).href;
  await pub.setRemoteDescription({ type: 'answer', sdp: await r1.text() });

  // The listener: WHEP, retried while the channel is not live yet (409).
  const sub = new RTCPeerConnection();
  sub.addTransceiver('audio', { direction: 'recvonly' });
  const gotTrack = new Promise((resolve) => { sub.ontrack = (e) => resolve(e.track); });
  await sub.setLocalDescription(await sub.createOffer());
  await gathered(sub);
  let r2;
  for (let i = 0; i < 50; i++) {
    r2 = await fetch(whep, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
      body: sub.localDescription.sdp,
    });
    if (r2.status !== 409) break;
    await sleep(200);
  }
  if (r2.status !== 201) return { whipStatus: 201, whepStatus: r2.status, body: await r2.text() };
  const whepSession = new URL(r2.headers.get('location'), whep).href;
  await sub.setRemoteDescription({ type: 'answer', sdp: await r2.text() });
  const track = await gotTrack;
  // Chromium routes remote WebRTC audio to WebAudio only while an element plays the stream.
  const stream = new MediaStream([track]);
  const el = new Audio();
  el.srcObject = stream;
  el.muted = true;
  await el.play().catch(() => {});
  const onset = new AudioWorkletNode(ctx, 'onset');
  const heard = [];
  let level = { peak: 0 };
  onset.port.onmessage = (e) => {
    if (typeof e.data === 'number') heard.push(e.data); else level = e.data;
  };
  // The worklet is pulled through a silent path to the output.
  ctx.createMediaStreamSource(stream).connect(onset)
    .connect(new GainNode(ctx, { gain: 0 })).connect(ctx.destination);

  // Clicks from a second after the listener is wired, for SECONDS.
  const first = ctx.currentTime + 1;
  const clicks = [];
  for (let t = first; t < first + seconds; t += INTERVAL) {
    gate.gain.setValueAtTime(0.8, t);
    gate.gain.setValueAtTime(0, t + 0.01);
    clicks.push(t);
  }
  await sleep((seconds + 1.5) * 1000);

  // Each onset belongs to the latest click scheduled before it.
  const latencies = [];
  for (const h of heard) {
    const before = clicks.filter((c) => c <= h);
    if (before.length) latencies.push((h - before[before.length - 1]) * 1000);
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const q = (p) => sorted.length ? sorted[Math.round((sorted.length - 1) * p)] : null;
  let inbound = {};
  (await sub.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') inbound = s;
  });
  const d1 = await fetch(whepSession, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  const d2 = await fetch(whipSession, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } });
  pub.close();
  sub.close();
  const round = (v) => v === null ? null : Math.round(v * 10) / 10;
  return {
    whipStatus: 201,
    whepStatus: 201,
    clicks: clicks.length,
    heard: heard.length,
    latencyMsMin: round(q(0)),
    latencyMsP50: round(q(0.5)),
    latencyMsP90: round(q(0.9)),
    latencyMsMax: round(q(1)),
    jitterBufferMs: inbound.jitterBufferEmittedCount
      ? round(1000 * inbound.jitterBufferDelay / inbound.jitterBufferEmittedCount) : null,
    packetsReceived: inbound.packetsReceived ?? 0,
    packetsLost: inbound.packetsLost ?? 0,
    baseLatencyMs: round(ctx.baseLatency * 1000),
    peak: Math.round(level.peak * 1000) / 1000,
    deleteStatuses: [d1.status, d2.status],
  };
}, { whip, key, whep, token, seconds });
console.log(JSON.stringify(result));
process.exit(result.heard > 0 ? 0 : 1);
