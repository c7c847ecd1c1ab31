// Uploads a file with the official tus-js-client, in chunks.
//
//   node tus_upload.mjs cut    ENDPOINT TOKEN FILE CHUNK CUT_AT   -> prints {"url": ...}
//   node tus_upload.mjs resume ENDPOINT TOKEN FILE CHUNK URL      -> prints {"track": ...}
//
// `cut` sends the upload through a TCP proxy that drops the connection once CUT_AT bytes of
// request have gone through, so the upload fails mid-chunk; it prints the upload's URL and exits 0
// when the upload failed as intended. `resume`, run as another process, continues that upload
// from the offset the server reports and prints the track the server made of it.
import net from 'node:net';
import fs from 'node:fs';
import * as tus from 'tus-js-client';

const [mode, endpoint, token, file, chunkArg, extra] = process.argv.slice(2);
const data = fs.readFileSync(file);
const chunkSize = Number(chunkArg);
const headers = { Authorization: `Bearer ${token}` };
const metadata = { filename: file.split('/').pop(), filetype: 'application/octet-stream', title: 'tus upload' };

function upload(options) {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(data, {
      chunkSize,
      headers,
      metadata,
      retryDelays: null,
      removeFingerprintOnSuccess: true,
      ...options,
      onError: (e) => reject(Object.assign(e, { upload: u })),
      onSuccess: (payload) => resolve({ upload: u, payload }),
    });
    u.start();
  });
}

if (mode === 'cut') {
  const target = new URL(endpoint);
  const cutAt = Number(extra);
  let through = 0;
  const proxy = net.createServer((client) => {
    const server = net.connect(Number(target.port), target.hostname);
    client.on('data', (d) => {
      through += d.length;
      if (through > cutAt) {
        client.destroy();
        server.destroy();
        return;
      }
      server.write(d);
    });
    server.on('data', (d) => client.write(d));
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  const via = `http://127.0.0.1:${proxy.address().port}${target.pathname}`;
  try {
    await upload({ endpoint: via });
    console.error('the upload finished although its connection was cut');
    process.exit(1);
  } catch (e) {
    if (!e.upload.url) {
      console.error('the upload was never created: ' + e);
      process.exit(1);
    }
    // The URL came through the proxy; give the real server's.
    const url = new URL(e.upload.url);
    url.host = target.host;
    console.log(JSON.stringify({ url: url.toString(), through, error: String(e.message).slice(0, 200) }));
    proxy.close();
    process.exit(0);
  }
} else if (mode === 'resume') {
  let firstProgress = null;
  const { upload: u, payload } = await upload({
    endpoint,
    uploadUrl: extra,
    onProgress: (sent) => {
      if (firstProgress === null) firstProgress = sent;
    },
  });
  // The last PATCH answer names the track the upload became.
  const track = payload && payload.lastResponse ? payload.lastResponse.getHeader('veza-track') : null;
  console.log(JSON.stringify({ url: u.url, track, firstProgress }));
  process.exit(0);
} else {
  console.error('usage: node tus_upload.mjs cut|resume ENDPOINT TOKEN FILE CHUNK CUT_AT|URL');
  process.exit(2);
}
