// The Rust half of the example host: it registers the shell plugin (which spawns
// capture-bridge for the TypeScript client in src/bridge-client.ts) and tells the
// page the app's own pid, which the bridge watches through `--parent-pid`.

// No extra console window on Windows in release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use serde::Serialize;

#[derive(Serialize)]
struct HostInfo {
    /// This process: capture-bridge exits within 2 s after it dies, even if stdin stays open.
    pid: u32,
    /// "linux", "macos" or "windows": macOS spawns the onedir from Resources instead of the sidecar.
    os: &'static str,
    /// The codex this app bundles as its own `externalBin` ("bin/codex-app-server"), which Tauri
    /// places beside the app's executable without the target triple; None when it is not there.
    #[serde(rename = "codexBinary")]
    codex_binary: Option<String>,
}

#[tauri::command]
fn host_info() -> HostInfo {
    let codex = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(format!("codex-app-server{}", std::env::consts::EXE_SUFFIX)))
        .filter(|path| path.is_file())
        .map(|path| path.to_string_lossy().into_owned());
    HostInfo {
        pid: std::process::id(),
        os: std::env::consts::OS,
        codex_binary: codex,
    }
}

fn main() {
    tauri::Builder::default()
        .plugin(tauri_plugin_shell::init())
        .invoke_handler(tauri::generate_handler![host_info])
        .run(tauri::generate_context!())
        .expect("error while running the capture-bridge example host");
}
