# veza-stream: build in the Rust image, run on Debian slim.
#   docker build -t veza-stream .
#   docker run -p 8080:8080 -v veza-data:/data veza-stream
# The web app, built from its pinned npm packages; the server embeds web/dist.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json web/build.mjs ./
COPY web/src ./src
RUN npm ci --no-audit --no-fund && npm run build

FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
COPY --from=web /web/dist ./web/dist
RUN cargo build --release --locked --bin veza-stream

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /data veza && mkdir -p /data && chown veza /data
COPY --from=build /src/target/release/veza-stream /usr/local/bin/veza-stream
COPY config/default.toml /etc/veza/default.toml
USER 10001
WORKDIR /data
# The binary allocates with jemalloc (the default `jemalloc` feature; see README, "Soak").
ENV VEZA_SERVER__LISTEN=0.0.0.0:8080 \
    VEZA_SERVER__DATA_DIR=/data \
    VEZA_DATABASE__URL=sqlite:///data/veza.db \
    VEZA_STORAGE__PATH=/data/media
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["veza-stream"]
CMD ["serve"]
