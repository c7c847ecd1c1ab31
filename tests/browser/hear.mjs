// Plays the page's audio element for `ms` and reports how far it went and how loud it was.
export const listen = (p, ms = 3000) => p.evaluate(async (ms) => {
  const a = document.querySelector('audio');
  await a.play().catch(() => {});
  // One context and one source node per element: a second MediaElementSource throws.
  if (!a.analyser) {
    const ctx = new AudioContext();
    a.analyser = ctx.createAnalyser();
    ctx.createMediaElementSource(a).connect(a.analyser);
    a.analyser.connect(ctx.destination);
    await ctx.resume();
  }
  const start = a.currentTime;
  const buf = new Float32Array(2048);
  let peak = 0;
  const until = performance.now() + ms;
  while (performance.now() < until) {
    await new Promise((res) => setTimeout(res, 100));
    a.analyser.getFloatTimeDomainData(buf);
    for (const v of buf) peak = Math.max(peak, Math.abs(v));
  }
  return { advanced: a.currentTime - start, peak };
}, ms);
