#!/usr/bin/env python3
"""The testnet's network links: one TCP forwarder per ordered pair of bureaus, so a bureau can be
cut off from every other (its process and API keep running) and reconnected.

    links.py serve RUN_DIR      forward every link of RUN_DIR/links.json until killed
    links.py cut RUN_DIR CODE   cut bureau CODE off: close its links, refuse new connections
    links.py heal RUN_DIR CODE  reconnect bureau CODE
    links.py status RUN_DIR     list the bureaus that are cut off

RUN_DIR/links.json (written by up.sh --links) lists {"from", "to", "listen", "target"}: bureau
`from` dials bureau `to` at 127.0.0.1:listen (its node config's [peers] table says so), and the
forwarder passes the bytes to `to`'s real p2p port. The set of cut bureaus lives in
RUN_DIR/links.cut, one code per line; the forwarder re-reads it every 100 ms. Standard library
only.
"""

import asyncio
import json
import os
import sys


def cut_path(run):
    return os.path.join(run, "links.cut")


def read_cut(run):
    try:
        with open(cut_path(run)) as f:
            return {line.strip() for line in f if line.strip()}
    except FileNotFoundError:
        return set()


def write_cut(run, codes):
    tmp = cut_path(run) + ".tmp"
    with open(tmp, "w") as f:
        f.write("".join(f"{c}\n" for c in sorted(codes)))
    os.replace(tmp, cut_path(run))


class Forwarder:
    def __init__(self, run):
        self.run = run
        with open(os.path.join(run, "links.json")) as f:
            self.links = json.load(f)["links"]
        self.cut = read_cut(run)
        self.open = set()  # (from, to, writer) of live connections

    def blocked(self, link):
        return link["from"] in self.cut or link["to"] in self.cut

    async def pipe(self, reader, writer):
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    def handler(self, link):
        async def handle(client_reader, client_writer):
            if self.blocked(link):
                client_writer.close()
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", link["target"])
            except OSError:
                client_writer.close()
                return
            pair = (link["from"], link["to"], client_writer, up_writer)
            self.open.add(pair)
            try:
                await asyncio.gather(
                    self.pipe(client_reader, up_writer), self.pipe(up_reader, client_writer)
                )
            finally:
                self.open.discard(pair)

        return handle

    async def watch(self):
        while True:
            await asyncio.sleep(0.1)
            cut = read_cut(self.run)
            if cut != self.cut:
                self.cut = cut
                for pair in list(self.open):
                    if pair[0] in cut or pair[1] in cut:
                        for w in pair[2:]:
                            try:
                                w.transport.abort()
                            except Exception:
                                pass
                        self.open.discard(pair)

    async def serve(self):
        servers = []
        for link in self.links:
            servers.append(
                await asyncio.start_server(self.handler(link), "127.0.0.1", link["listen"])
            )
        print(f"links: forwarding {len(servers)} links", file=sys.stderr, flush=True)
        await self.watch()


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("serve", "cut", "heal", "status"):
        sys.exit(__doc__)
    command, run = sys.argv[1], sys.argv[2]
    if not os.path.exists(os.path.join(run, "links.json")):
        sys.exit(f"{run} has no links.json: start the testnet with testnet/up.sh --links")
    if command == "serve":
        asyncio.run(Forwarder(run).serve())
        return
    if command == "status":
        cut = read_cut(run)
        print("cut off: " + (" ".join(sorted(cut)) if cut else "none"))
        return
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    code = sys.argv[3]
    with open(os.path.join(run, "links.json")) as f:
        codes = {link["from"] for link in json.load(f)["links"]}
    if code not in codes:
        sys.exit(f"unknown bureau {code}; the testnet has {' '.join(sorted(codes))}")
    cut = read_cut(run)
    if command == "cut":
        cut.add(code)
    else:
        cut.discard(code)
    write_cut(run, cut)


if __name__ == "__main__":
    main()
