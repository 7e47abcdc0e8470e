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
}

#[tauri::command]
fn host_info() -> HostInfo {
    HostInfo {
        pid: std::process::id(),
        os: std::env::consts::OS,
    }
}

fn main() {
    tauri::Builder::default()
        .plugin(tauri_plugin_shell::init())
        .invoke_handler(tauri::generate_handler![host_info])
        .run(tauri::generate_context!())
        .expect("error while running the capture-bridge example host");
}
