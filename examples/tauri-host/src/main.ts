// The example app's page: start the bridge, show the capture mode, follow live events.

import { invoke } from "@tauri-apps/api/core";
import { Command } from "@tauri-apps/plugin-shell";

import { CaptureBridge } from "./bridge-client";

/** What src-tauri/src/main.rs's `host_info` command returns. */
interface HostInfo {
  pid: number;
  os: string;
  codexBinary: string | null;
}

const modeView = document.querySelector<HTMLElement>("#mode");
const logView = document.querySelector<HTMLElement>("#log");

function log(line: string): void {
  if (logView !== null) {
    logView.textContent = `${line}\n${logView.textContent ?? ""}`.slice(0, 20_000);
  }
}

async function main(): Promise<void> {
  const host = await invoke<HostInfo>("host_info");
  const bridge = await CaptureBridge.start({
    parentPid: host.pid,
    ...(host.codexBinary !== null ? { codexBinary: host.codexBinary } : {}),
    // macOS ships the onedir under Contents/Resources (docs/tauri.md): a scoped command, not the sidecar.
    ...(host.os === "macos"
      ? { command: (args: string[], env: Record<string, string>) => Command.create("capture-bridge-macos", args, { env }) }
      : {}),
    onLog: (line) => console.debug(line),
    onExit: (exit) => log(`capture-bridge exited: code ${exit.code}, signal ${exit.signal}`),
  });
  log(`capture-bridge ${bridge.info.version}, data dir ${bridge.info.dataDir}`);

  const status = await bridge.request("get_capture_reliability_status");
  if (modeView !== null) {
    modeView.textContent = status.mode;
  }
  bridge.on("capture-reliability-transition", (t) => {
    if (modeView !== null) {
      modeView.textContent = t.toMode;
    }
    log(`mode ${t.fromMode ?? "—"} → ${t.toMode}: ${t.reason}`);
  });
  bridge.on("session:live:event", (event) => {
    switch (event.type) {
      case "SessionDelta":
        log(`${event.eventType} ${event.threadId}`);
        break;
      case "ApprovalRequest":
        log(`approval asked: ${event.command ?? event.kind} (answer within ${event.timeoutMs} ms)`);
        break;
      case "ApprovalResult":
        log(`approval ${event.decision ?? "observed"} by ${event.decidedBy}`);
        break;
      case "ParserValidationError":
        log(`codex sent something unexpected: ${event.reason}`);
        break;
    }
  });
  window.addEventListener("beforeunload", () => void bridge.stop());
}

main().catch((error: unknown) => log(`capture-bridge did not start: ${String(error)}`));
