#!/usr/bin/env python3
"""whip_publish.py WHIP_URL STREAM_KEY AUDIO_FILE SECONDS

aiortc as a WHIP publisher (RFC 9725): sends AUDIO_FILE (looped) as Opus for SECONDS, then
DELETEs the session. ICE stays on 127.0.0.1. Prints one JSON object: the POST status, the
Location, the connection state reached, and the DELETE status. Exit 0 when it connected.
"""
import asyncio
import json
import sys
import time
import urllib.parse

import aiohttp
import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]


async def main(url, key, path, seconds):
    out = {"connected": False}
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    player = MediaPlayer(path, loop=True)
    pc.addTransceiver(player.audio, direction="sendonly")
    states = []

    @pc.on("connectionstatechange")
    async def _():
        states.append(pc.connectionState)
        if pc.connectionState == "connected":
            out["connected"] = True
            out["connect_s"] = round(time.monotonic() - t0, 3)

    t0 = time.monotonic()
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=pc.localDescription.sdp.encode(), headers={
            "Content-Type": "application/sdp", "Authorization": f"Bearer {key}"}) as r:
            out["post_status"] = r.status
            body = await r.text()
            out["location"] = r.headers.get("Location")
        if out["post_status"] != 201:
            out["body"] = body
            print(json.dumps(out))
            return 1
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        await asyncio.sleep(seconds)
        async with http.delete(urllib.parse.urljoin(url, out["location"]),
                               headers={"Authorization": f"Bearer {key}"}) as r:
            out["delete_status"] = r.status
    out["states"] = states
    await pc.close()
    player.audio.stop()
    print(json.dumps(out))
    return 0 if out["connected"] else 1


if __name__ == "__main__":
    u, k, p, s = sys.argv[1:5]
    sys.exit(asyncio.run(main(u, k, p, float(s))))
