"""Reading YAML/JSON config files while keeping line numbers for error messages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hyperjoule.config._limits import MAX_NESTING
from hyperjoule.errors import ConfigError

__all__ = ["ConfigDocument", "read_config_text", "read_document"]


def read_config_text(path: Path, what: str) -> str:
    """The text of a file the user named, or one line saying why it cannot be read.

    Args:
        path: File to read.
        what: What the file is, for messages ("study file", "legacy results").

    Raises:
        ConfigError: The file is missing, a directory, unreadable or not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "", f"{what} not found; check the path") from None
    except IsADirectoryError:
        raise ConfigError(path, "", f"{what} is a directory; give the file's path") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, "", f"cannot read {what}: {e}") from None


class ConfigDocument:
    """A parsed config file: its data plus a map from field paths to line numbers."""

    def __init__(self, path: Path, data: Any, node: yaml.Node | None) -> None:
        self.path = path
        self.data = data
        self._node = node

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """Return the 1-based line of the deepest node found along ``loc``."""
        node = self._node
        line = None if node is None else node.start_mark.line + 1
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                match = next(
                    (v for k, v in node.value if getattr(k, "value", None) == str(part)), None
                )
                if match is None:
                    # The key is absent (a missing field): point at the mapping itself.
                    break
                # Point at the key's line: a value can span many lines.
                key_node = next(k for k, v in node.value if v is match)
                line = key_node.start_mark.line + 1
                node = match
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def error(self, loc: Sequence[str | int], message: str) -> ConfigError:
        """Build a :class:`ConfigError` for the field at ``loc``."""
        field = ".".join(str(p) for p in loc)
        return ConfigError(self.path, field, message, line=self.line_of(loc))


def read_document(path: Path, *, what: str) -> ConfigDocument:
    """Read a YAML or JSON file into a :class:`ConfigDocument`.

    Args:
        path: File to read.
        what: What the file is, for messages ("study file", "targets file").

    Raises:
        ConfigError: The file is missing, unreadable or not valid YAML/JSON.
    """
    text = read_config_text(path, what)

    _check_nesting(path, text)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(path, "", f"invalid JSON: {e.msg}", line=e.lineno) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            line = None if mark is None else mark.line + 1
            raise ConfigError(path, "", f"invalid YAML: {problem}", line=line) from None
    try:
        # JSON is (almost) YAML: composing gives line numbers for both formats.
        node = yaml.compose(text)
    except yaml.YAMLError:
        node = None
    if not isinstance(data, dict):
        raise ConfigError(path, "", f"{what} must be a mapping of keys to values at the top level")
    if node is not None:
        _check_duplicate_keys(path, node)
    return ConfigDocument(path, data, node)


class _Frame:
    """One open mapping or sequence while walking the event stream."""

    def __init__(self, is_mapping: bool) -> None:
        self.is_mapping = is_mapping
        self.expect_key = True
        self.part = ""

    def enter_node(self, event: yaml.Event) -> bool:
        """Account for a node of this collection; True when it is a mapping key."""
        if not self.is_mapping:
            self.part = str(int(self.part or -1) + 1)
            return False
        is_key, self.expect_key = self.expect_key, not self.expect_key
        if is_key:
            self.part = str(getattr(event, "value", "?"))
        return is_key


def _check_nesting(path: Path, text: str) -> None:
    """Refuse nesting deeper than ``MAX_NESTING`` before any recursive parser sees it.

    The YAML event stream is flat (no recursion), so depth is counted there; both
    readers of the file (``yaml.compose``, ``json.loads``) recurse per level.
    """
    frames: list[_Frame] = []
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.NodeEvent) and frames:
                frames[-1].enter_node(event)
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(frames) >= MAX_NESTING:
                    raise ConfigError(
                        path,
                        ".".join(f.part for f in frames),
                        f"nested more than {MAX_NESTING} levels deep; flatten it",
                        line=event.start_mark.line + 1 if event.start_mark else None,
                    )
                frames.append(_Frame(isinstance(event, yaml.MappingStartEvent)))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frames.pop()
    except yaml.YAMLError:
        return  # reported with its line by the reader below


def _key_path(parents: list[str], key: str) -> str:
    return ".".join([*parents, key])


def _check_duplicate_keys(path: Path, root: yaml.Node) -> None:
    """Refuse a key given twice in one mapping (YAML would silently keep the last)."""
    stack: list[tuple[yaml.Node, list[str]]] = [(root, [])]
    while stack:
        node, parents = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(getattr(key_node, "value", ""))
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise ConfigError(
                        path,
                        _key_path(parents, key),
                        f"duplicate key (first on line {seen[key]}); keep one of them",
                        line=line,
                    )
                seen[key] = line
                stack.append((value_node, [*parents, key]))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, [*parents, str(i)]) for i, item in enumerate(node.value))
