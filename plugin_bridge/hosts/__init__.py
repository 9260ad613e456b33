"""`cuesmith hosts`: install the editor and DAW scripts shipped in this folder.

Each host's files go to its standard per-user folder (or `--dest DIR/<host>`).
A file already there is replaced only when it is byte-identical to what
cuesmith installed before (recorded with its sha256 in `.cuesmith-install.json`
in that folder); a file the user changed, or one cuesmith never wrote, is kept
and reported, never overwritten. Re-running is idempotent.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ...engine.errors import CuesmithError
from ...engine.files import write_bytes_atomic, write_json_atomic

HERE = Path(__file__).resolve().parent
MANIFEST = ".cuesmith-install.json"
BIN_PLACEHOLDER = "@CUESMITH_BIN@"
HOSTS = ("resolve", "premiere", "reaper", "ableton")


@dataclass
class Part:
    """One folder of a host's files: (shipped file relative to this package, installed name)."""
    name: str
    files: list[tuple[str, str]]
    folder: dict[str, str]  # platform.system() -> folder, with ~ and %APPDATA%-style variables
    note: str = ""


PREMIERE_CEP = [(f"premiere/cep/{p}", p) for p in ("CSXS/manifest.xml", "index.html", "main.js", "host.jsx")]
PREMIERE_CEP.append(("premiere/core.js", "core.js"))
PREMIERE_UXP = [(f"premiere/uxp/{p}", p) for p in ("manifest.json", "index.html", "main.js")]
PREMIERE_UXP.append(("premiere/core.js", "core.js"))
DATA = {"Linux": "~/.local/share/cuesmith/hosts", "Darwin": "~/Library/Application Support/cuesmith/hosts",
        "Windows": "%LOCALAPPDATA%/cuesmith/hosts"}

PARTS: dict[str, list[Part]] = {
    "resolve": [Part("resolve", [("resolve/cuesmith_score.py", "cuesmith_score.py"),
                                 ("resolve/cuesmith_score.lua", "cuesmith_score_lua.lua"),
                                 ("lua/cuesmith_lib.lua", "cuesmith_lib.lua")],
                     {"Linux": "~/.local/share/DaVinciResolve/Fusion/Scripts/Utility",
                      "Darwin": "~/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility",
                      "Windows": "%APPDATA%/Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Utility"},
                     "in Resolve: Workspace > Scripts > cuesmith_score (Studio, Python) or cuesmith_score_lua "
                     "(free 21.1+ runs Lua only); cuesmith_lib is their helper, not a script to run")],
    "premiere": [Part("premiere-cep", PREMIERE_CEP,
                      {"Darwin": "~/Library/Application Support/Adobe/CEP/extensions/com.cuesmith.panel",
                       "Windows": "%APPDATA%/Adobe/CEP/extensions/com.cuesmith.panel",
                       "Linux": DATA["Linux"] + "/premiere-cep"},
                      "CEP (Premiere 2019-2025): unsigned panels need PlayerDebugMode: macOS `defaults write "
                      "com.adobe.CSXS.11 PlayerDebugMode 1`, Windows registry HKCU\\Software\\Adobe\\CSXS.11 "
                      "PlayerDebugMode = \"1\"; then Window > Extensions > cuesmith"),
                 Part("premiere-uxp", PREMIERE_UXP,
                      {k: v + "/premiere-uxp" for k, v in DATA.items()},
                      "UXP (Premiere 25.6+): open the UXP Developer Tool, Add Plugin, choose manifest.json in this "
                      "folder, then Load; the panel is under Window > UXP Plugins > cuesmith")],
    "reaper": [Part("reaper", [("reaper/cuesmith_score.lua", "cuesmith_score.lua"),
                               ("lua/cuesmith_lib.lua", "cuesmith_lib.lua")],
                    {"Linux": "~/.config/REAPER/Scripts/cuesmith",
                     "Darwin": "~/Library/Application Support/REAPER/Scripts/cuesmith",
                     "Windows": "%APPDATA%/REAPER/Scripts/cuesmith"},
                    "in REAPER: Actions > Show action list > New action > Load ReaScript > cuesmith_score.lua")],
    "ableton": [Part("ableton", [("ableton/README.md", "README.md"),
                                 ("ableton/cuesmith_receiver.maxpat", "cuesmith_receiver.maxpat")],
                     {"Darwin": "~/Music/Ableton/User Library/cuesmith",
                      "Windows": "~/Documents/Ableton/User Library/cuesmith",
                      "Linux": DATA["Linux"] + "/ableton"},
                     "Ableton Live: follow README.md in this folder (a Max for Live recipe; not tested in Live)")],
}


@dataclass
class Action:
    verb: str  # "install" | "update" | "unchanged" | "keep"
    path: Path
    data: bytes = b""


@dataclass
class Plan:
    part: Part
    folder: Path
    actions: list[Action] = field(default_factory=list)


def standard_folder(part: Part, system: Optional[str] = None, env: Optional[dict] = None) -> Path:
    system = system or platform.system()
    template = part.folder.get(system, part.folder["Linux"])
    env = dict(os.environ if env is None else env)
    env.setdefault("HOME", str(Path.home()))
    for name in ("APPDATA", "LOCALAPPDATA"):
        env.setdefault(name, str(Path(env["HOME"]) / "AppData" / ("Roaming" if name == "APPDATA" else "Local")))
    expanded = template.replace("~", env["HOME"], 1) if template.startswith("~") else template
    for name in ("APPDATA", "LOCALAPPDATA"):
        expanded = expanded.replace(f"%{name}%", env[name])
    return Path(expanded)


def cuesmith_command() -> str:
    """The `cuesmith` executable the Lua scripts should run: the one beside this Python, else the one on PATH."""
    name = "cuesmith.exe" if os.name == "nt" else "cuesmith"
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else (shutil.which("cuesmith") or "cuesmith")


def rendered(source: str, command: str) -> bytes:
    data = (HERE / source).read_bytes()
    if BIN_PLACEHOLDER.encode() in data:  # inside a Lua string literal
        data = data.replace(BIN_PLACEHOLDER.encode(), command.replace("\\", "\\\\").replace('"', '\\"').encode())
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(folder: Path) -> dict[str, str]:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def plan_part(part: Part, folder: Path, command: str) -> Plan:
    if folder.exists() and not folder.is_dir():
        raise CuesmithError("exists and is not a folder", folder, hint="pass another --dest")
    ours = read_manifest(folder)
    plan = Plan(part, folder)
    for source, name in part.files:
        data, target = rendered(source, command), folder / name
        if not target.exists():
            verb = "install"
        elif target.read_bytes() == data:
            verb = "unchanged"
        elif ours.get(name) == sha256(target.read_bytes()):
            verb = "update"  # an older version cuesmith wrote and nobody changed since
        else:
            verb = "keep"
        plan.actions.append(Action(verb, target, data))
    return plan


def carry_out(plan: Plan) -> None:
    before = read_manifest(plan.folder)
    manifest = dict(before)
    for action in plan.actions:
        if action.verb in ("install", "update"):
            write_bytes_atomic(action.path, action.data)
        if action.verb != "keep":
            manifest[action.path.relative_to(plan.folder).as_posix()] = sha256(action.data)
    if manifest != before:
        write_json_atomic(plan.folder / MANIFEST, manifest)


SAY = {"install": "installed", "update": "updated", "unchanged": "unchanged",
       "keep": "kept your changed file (not replaced; move it away and re-run to update)"}
SAY_DRY = {"install": "would install", "update": "would update", "unchanged": "unchanged",
           "keep": "would keep your changed file (not replaced)"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("install", "list"),
                        help="install the files, or list the hosts, their files and standard folders")
    parser.add_argument("--host", choices=HOSTS + ("all",), default="all", help="which host's files (default all)")
    parser.add_argument("--dest", type=Path, metavar="DIR",
                        help="install into DIR/<host> instead of each host's standard folder")
    parser.add_argument("--dry-run", action="store_true", help="say what would be written, write nothing")
    parser.add_argument("--list", action="store_true", help="list the hosts, their files and standard folders")


def main(args: argparse.Namespace) -> int:
    hosts = HOSTS if args.host == "all" else (args.host,)
    parts = [part for host in hosts for part in PARTS[host]]
    if args.action is None and not args.list:
        raise CuesmithError("say what to do", hint="cuesmith hosts install [--host H] [--dest DIR] [--dry-run], "
                                                  "or cuesmith hosts list")
    if args.list or args.action == "list":
        for part in parts:
            print(f"{part.name}: {', '.join(name for _, name in part.files)} -> {standard_folder(part)}")
        return 0
    command = cuesmith_command()
    plans = [plan_part(p, (args.dest / p.name) if args.dest else standard_folder(p), command) for p in parts]
    for plan in plans:
        if not args.dry_run:
            carry_out(plan)
        for action in plan.actions:
            print(f"{plan.part.name}: {(SAY_DRY if args.dry_run else SAY)[action.verb]}: {action.path}")
        print(f"{plan.part.name}: {plan.part.note}")
    kept = sum(a.verb == "keep" for plan in plans for a in plan.actions)
    if kept:
        print(f"{kept} file(s) you changed were kept as they are", file=sys.stderr)
    return 0
