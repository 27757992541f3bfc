"""Just enough of the Dockerfile and .dockerignore formats to check ours against the repository."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    args: str  # the rest, continuation lines joined
    line: int


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"stage {self.name}: expected one {keyword}, found {len(found)}"
        return found[0]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for token in shlex.split(instruction.args):
                name, _, value = token.partition("=")
                values[name] = value
        return values

    def copies(self) -> list[Copy]:
        return [Copy.parse(i) for i in self.all("COPY")]

    def exec_form(self, keyword: str) -> list[str]:
        """CMD / ENTRYPOINT / HEALTHCHECK in JSON (exec) form, as a list of words."""
        args = self.one(keyword).args
        if keyword == "HEALTHCHECK":
            args = args.split("CMD", 1)[1]
        words = json.loads(args)
        assert isinstance(words, list), f"{keyword} is not in exec form: {args}"
        return [str(word) for word in words]


@dataclass(frozen=True)
class Copy:
    sources: list[str]
    dest: str
    from_stage: str | None

    @classmethod
    def parse(cls, instruction: Instruction) -> Copy:
        words = shlex.split(instruction.args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        return cls(paths[:-1], paths[-1], from_stage)


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: dict[str, Stage]

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        global_args: dict[str, str] = {}
        stages: dict[str, Stage] = {}
        current: Stage | None = None
        for instruction in _instructions(path.read_text(encoding="utf-8")):
            if instruction.keyword == "FROM":
                words = instruction.args.split()
                assert len(words) == 3 and words[1].upper() == "AS", f"line {instruction.line}: FROM without AS name"
                current = stages[words[2]] = Stage(words[2], words[0])
            elif current is None:
                assert instruction.keyword == "ARG", f"line {instruction.line}: only ARG may precede FROM"
                name, _, value = instruction.args.partition("=")
                global_args[name] = value
            else:
                current.instructions.append(instruction)
        return cls(global_args, stages)

    def parents(self, name: str) -> list[str]:
        """The stages `name` is built FROM, nearest first (`FROM runtime AS gpu` -> ["runtime"])."""
        chain: list[str] = []
        base = self.stages[name].base
        while base in self.stages:
            chain.append(base)
            base = self.stages[base].base
        return chain

    def image(self, name: str) -> Stage:
        """What `docker build --target name` gives: the instructions of its parent stages, then its own,
        on the base image the chain starts from."""
        chain = [*reversed(self.parents(name)), name]
        root = self.stages[chain[0]].base
        return Stage(name, root, [i for stage in chain for i in self.stages[stage].instructions])

    def base_image(self, name: str) -> str:
        """The registry image a stage starts from, with global ARG defaults filled in."""
        base = self.image(name).base
        for arg, value in self.global_args.items():
            base = base.replace("${" + arg + "}", value.strip('"'))
        return base


def _instructions(text: str) -> list[Instruction]:
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may sit between continuation lines too
        if not pending:
            start = number
        pending.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            keyword, _, args = " ".join(pending).partition(" ")
            found.append(Instruction(keyword.upper(), args.strip(), start))
            pending = []
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


class DockerIgnore:
    """Docker's rules: patterns in order, the last one matching a path (or a folder above it) decides."""

    def __init__(self, path: Path) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = line.removeprefix("!").strip().strip("/")
            self.rules.append((keep, re.compile(_glob_regex(pattern))))

    def excludes(self, relative: str) -> bool:
        parts = relative.strip("/").split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for keep, regex in self.rules:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                excluded = not keep
        return excluded


def _glob_regex(pattern: str) -> str:
    """`**` spans folders (also none), `*` and `?` stay inside one path segment."""
    out = ""
    for piece in re.split(r"(\*\*/?)", pattern):
        if piece.startswith("**"):
            out += "(?:.*/)?" if piece.endswith("/") else ".*"
            continue
        for char in piece:
            out += {"*": "[^/]*", "?": "[^/]"}.get(char) or re.escape(char)
    return out
