"""``make demo`` (``python -m ailib.demo``): ailib's main job, end to end, offline.

Each step runs the real ``ailib`` command in a new process, exactly as a user would type it,
and prints the command and what it said: a chat whose turns are stored, the same chat resumed
by a second process with its history, a checkpoint restored, an export, and a copy into a
second backend. Everything lives in a temporary directory deleted at the end, so every run
starts clean; the store is SQLite (ailib's embedded default) when ailib-store-sql is
installed, else the example ``jsonfile`` store, since a memory store dies with its process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from ailib.cli.common import default_store_url
from ailib.registry import available_stores

__all__ = ("main",)

SESSION = "demo-trip"
WIDTH = 88


class DemoFailed(Exception):
    """A step did not do what the demo promised; the message says which."""


class Demo:
    def __init__(self, root: Path) -> None:
        self.root = root
        schemes = {info.scheme for info in available_stores()}
        if "sqlite" in schemes:
            self.primary = f"sqlite:///{root / 'sessions.db'}"
            self.why = (
                "SQLite, ailib's embedded default. On your machine, without --store or "
                f"AILIB_STORE_URL, it is {default_store_url()}; the demo uses a temporary "
                "database instead so that each run starts clean."
            )
        elif "jsonfile" in schemes:
            self.primary = f"jsonfile://{root / 'sessions'}"
            self.why = (
                "the example jsonfile store (one JSON file per session), because "
                "ailib-store-sql is not installed: without it ailib's default store is memory, "
                "which does not outlive a process."
            )
        else:
            raise DemoFailed(
                "neither ailib-store-sql nor the example ailib-store-jsonfile is installed; "
                "run `make install` (or pip install ailib-store-sql)"
            )
        if "jsonfile" in schemes:
            self.secondary = f"jsonfile://{root / 'copy'}"
        else:
            self.secondary = f"sqlite:///{root / 'copy.db'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        self.env["AILIB_STORE_URL"] = self.primary
        self.step_number = 0

    # -- presentation ---------------------------------------------------------------------

    def short(self, text: str) -> str:
        return text.replace(str(self.root), "$DEMO")

    def step(self, title: str, explanation: str) -> None:
        self.step_number += 1
        print()
        print(f"── Step {self.step_number}: {title} ".ljust(WIDTH, "─"))
        print(textwrap.fill(explanation, WIDTH))

    def ailib(self, *args: str, input: str | None = None, expect_ok: bool = True) -> str:
        """Run ``ailib ARGS`` in a new process; print the command and its output."""
        shown = " ".join(a if " " not in a else repr(a) for a in args)
        print()
        if input is not None:
            typed = input.rstrip("\n").replace("\n", "\\n")
            print(self.short(f"$ printf '{typed}\\n' | ailib {shown}"))
        else:
            print(self.short(f"$ ailib {shown}"))
        done = subprocess.run(
            [sys.executable, "-m", "ailib.cli", *args],
            input=input,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            cwd=self.root,
            timeout=300,
        )
        for line in _aligned(done.stdout.rstrip("\n").splitlines()):
            print(self.short(f"    {line}"))
        if expect_ok and done.returncode != 0:
            raise DemoFailed(f"`ailib {shown}` exited with status {done.returncode}")
        return done.stdout

    @staticmethod
    def check(condition: bool, what: str) -> None:
        if not condition:
            raise DemoFailed(what)
        print(f"  ✓ {what}")

    # -- the story ------------------------------------------------------------------------

    def run(self) -> None:
        print("ailib demo: conversation sessions that outlive the process, in any backend.")
        print(textwrap.fill(f"Sessions are stored in {self.why}", WIDTH))
        print(f"$DEMO is a temporary directory ({self.root}), deleted at the end.")
        print(
            self.short(
                f"Every command below finds the store through AILIB_STORE_URL={self.primary}"
            )
        )

        self.step(
            "which backends are installed",
            "A store backend is a plugin found by URL scheme; `ailib stores` lists them.",
        )
        self.ailib("stores")

        self.step(
            "a chat whose every turn is stored",
            "No API key is needed: --offline answers with a deterministic offline responder "
            "(with OPENAI_API_KEY set and no --offline, the same command talks to any "
            "OpenAI-compatible server). Input is piped, as a script would; /checkpoint saves "
            "the conversation's state under a label. The session is stored with its first "
            "exchange, so a chat whose model never answers leaves nothing behind.",
        )
        first = self.ailib(
            "chat", "--offline", "--session", SESSION, "--user", "newcomer",
            "--system", "You are a concise travel assistant.",
            input="Hi! I am planning a weekend in Lisbon.\n/checkpoint plan started\n"
            "What should I pack?\n/exit\n",
        )  # fmt: skip
        self.check(
            f"new session {SESSION}" in first and f"session {SESSION} holds 5 messages" in first,
            "the chat created the session and stored every turn",
        )

        self.step(
            "the same conversation, resumed by a second process",
            "The first process has exited. A new one opens the session by id, shows the "
            "history it loaded, and continues: the reply counts the user turns it was sent.",
        )
        second = self.ailib(
            "chat", "--offline", "--session", SESSION,
            input="Which neighbourhood should I stay in?\n/exit\n",
        )  # fmt: skip
        self.check("resumed session" in second, "the second process found the stored history")
        self.check("reply #3 to:" in second, "the model was sent the whole history (3rd turn)")

        self.step(
            "listing and reading sessions",
            "`sessions ls` lists what the store holds; `sessions show` prints a transcript.",
        )
        self.ailib("sessions", "ls")
        self.ailib("sessions", "show", SESSION)

        self.step(
            "going back to a checkpoint",
            "Restoring checkpoint 1 rewinds the conversation to where it was saved. Nothing is "
            "lost: the state it replaces becomes a new checkpoint.",
        )
        self.ailib("sessions", "checkpoints", SESSION)
        restored = self.ailib("sessions", "restore", SESSION, "1")
        self.check("3 messages" in restored, "the session is back to its first exchange")
        self.ailib("sessions", "checkpoints", SESSION)

        export = self.root / "demo-trip.jsonl"
        self.step(
            "exporting",
            "An export is JSON Lines, one session per line with its checkpoints, the same "
            "format for every backend.",
        )
        self.ailib("sessions", "export", SESSION, "-o", str(export))
        data = json.loads(export.read_text(encoding="utf-8"))
        self.check(
            len(data["messages"]) == 3 and len(data["checkpoints"]) == 2,
            f"{export.name} holds 3 messages and 2 checkpoints ({export.stat().st_size} bytes)",
        )

        self.step(
            "moving to another backend",
            f"`sessions copy` migrates every session, checkpoints included, from one store URL "
            f"to another (here {self.short(self.secondary)}). Re-running it is safe: sessions "
            "already there are skipped.",
        )
        self.ailib("sessions", "copy", self.primary, self.secondary)
        again = self.ailib("sessions", "copy", self.primary, self.secondary)
        self.check("skipped 1 (already identical)" in again, "the second copy changed nothing")
        copied = self.ailib("sessions", "show", SESSION, "--store", self.secondary)
        self.check("[3] assistant:" in copied, "the copy has the restored conversation")
        self.ailib("sessions", "checkpoints", SESSION, "--store", self.secondary)

        self.step(
            "importing the export",
            "The exported file loads into any store; the whole file is checked first, so a "
            "damaged file writes nothing.",
        )
        imported_url = f"sqlite:///{self.root / 'imported.db'}"
        if not self.primary.startswith("sqlite"):
            imported_url = f"jsonfile://{self.root / 'imported'}"
        imported = self.ailib("sessions", "import", str(export), "--store", imported_url)
        self.check("imported 1" in imported, "the export was imported")

        print()
        print("Done. Try it yourself:")
        print("  ailib chat                      # a new chat (offline without OPENAI_API_KEY)")
        print("  ailib chat --session ID         # resume one")
        print("  ailib sessions --help           # everything else; docs/cli.md has the reference")


def _aligned(lines: list[str]) -> list[str]:
    """Lines with each run of tab-separated rows (how ailib prints a table into a pipe)
    padded into columns."""
    out: list[str] = []
    block: list[list[str]] = []
    for line in [*lines, ""]:
        if "\t" in line:
            block.append(line.split("\t"))
            continue
        if block:
            widths = [
                max(len(row[i]) for row in block if i < len(row)) for i in range(len(block[0]))
            ]
            out += [
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
                for row in block
            ]
            block = []
        out.append(line)
    return out[:-1]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ailib-demo-") as tmp:
        try:
            Demo(Path(tmp).resolve()).run()
        except DemoFailed as exc:
            print(f"\ndemo failed: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
