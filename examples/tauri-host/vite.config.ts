import { defineConfig } from "vite";

// Tauri serves the dev build from this fixed port (tauri.conf.json > build > devUrl).
export default defineConfig({
  clearScreen: false,
  server: { port: 1420, strictPort: true },
});
