import { defineConfig } from "vite";

// The dashboard is served by the ketch server itself (`ketch server`), from
// src/ketch/server/static/. For `npm run dev`, API calls are proxied to a
// running server (override with KETCH_URL=http://host:port).
const target = process.env.KETCH_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/",
  oxc: {
    jsx: { runtime: "automatic" },
  },
  build: {
    outDir: "../src/ketch/server/static",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1000,
  },
  server: {
    proxy: {
      "/api": target,
      "/apis": target,
      "/healthz": target,
      "/readyz": target,
    },
  },
});
