// Plays the page's audio element for `ms` and reports how far it went and how loud it was. An
// element playing a WebRTC stream (`srcObject`) is measured from the stream itself.
export const listen = (p, ms = 3000) => p.evaluate(async (ms) => {
  const a = document.querySelector('audio');
  await a.play().catch(() => {});
  // One context and one source node per element: a second MediaElementSource throws.
  if (!a.tap) {
    const ctx = new AudioContext();
    a.tap = { ctx, element: null };
  }
  const { ctx } = a.tap;
  const analyser = ctx.createAnalyser();
  if (a.srcObject) {
    ctx.createMediaStreamSource(a.srcObject).connect(analyser);
  } else {
    if (!a.tap.element) {
      a.tap.element = ctx.createMediaElementSource(a);
      a.tap.element.connect(ctx.destination);
    }
    a.tap.element.connect(analyser);
  }
  await ctx.resume();
  const start = a.currentTime;
  const buf = new Float32Array(2048);
  let peak = 0;
  const until = performance.now() + ms;
  while (performance.now() < until) {
    await new Promise((res) => setTimeout(res, 100));
    analyser.getFloatTimeDomainData(buf);
    for (const v of buf) peak = Math.max(peak, Math.abs(v));
  }
  return { advanced: a.currentTime - start, peak };
}, ms);
