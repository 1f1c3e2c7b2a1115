"""Whether another account on this machine could swap what lies at a path: a folder it owns, or one any
account may write to, lets it rename the engine's file away and put its own in its place (a model, cached
vectors, a socket), or read what the engine writes there.

`resolution_steps` lists every folder and symlink the system passes through to reach a path (through each link's
target); `swap_risk` says why one step is unsafe, `path_swap_risk` why any step to a path is, `tree_swap_risk`
why anything in a model folder is; `trusted_folder` makes a folder the engine keeps for itself
(the global cache) and refuses one that another account could reach into; `trusted_owners` is this user, root and
the accounts named in `$CLIO_ENGINE_TRUSTED_UIDS` (a container run as root writes to a bind-mounted folder of the
host user's uid, which is the same person). Depends on nothing in the engine but its errors.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from clio_engine.errors import ConfigError, ModelError

# Folders the engine makes for itself: the umask can only take bits away, so never writable by group or others.
OWN_FOLDER = 0o755
# Accounts the user vouches for as their own: uids or account names, separated by commas or spaces.
TRUSTED_UIDS_ENV = "CLIO_ENGINE_TRUSTED_UIDS"


def trusted_owners() -> frozenset[int]:
    """The uids whose files and folders count as this user's own: this user, root, and each account listed in
    `$CLIO_ENGINE_TRUSTED_UIDS` (e.g. `1000` or `alice`: the host user whose folder a container run as root writes
    to, or the uid an NFS export squashes every account to). Read at each check, so a test or a notebook may set it
    late. A value that names no account is a one-line ConfigError, never ignored: a typo would otherwise refuse the
    folder the user meant to allow, or worse, look like it allowed it. Empty where the system has no POSIX
    accounts (Windows), where nothing is judged by owner."""
    if not hasattr(os, "geteuid"):
        return frozenset()
    owners = {os.geteuid(), 0}
    for item in os.environ.get(TRUSTED_UIDS_ENV, "").replace(",", " ").split():
        owners.add(_uid_of(item))
    return frozenset(owners)


def _uid_of(item: str) -> int:
    if item.isdigit():
        return int(item)
    import pwd

    try:
        return pwd.getpwnam(item).pw_uid
    except KeyError:
        raise ConfigError(f"${TRUSTED_UIDS_ENV}: {item!r} is neither a uid nor an account on this machine; list uids "
                          "or account names, separated by commas") from None


def resolution_steps(path: Path, *, follow_last: bool = False) -> list[tuple[Path, os.stat_result]]:
    """Every folder and symlink the system passes through to reach `path`, in order, with its lstat (the final
    component included, followed only with `follow_last`). A symlink's owner may point it elsewhere at any time,
    and so may the owner of every folder on the way to each link's target, so all of them count, not only the
    lexical parents.
    Raises FileNotFoundError for a missing step, OSError for a folder this user may not search or a link loop."""
    steps = [(Path("/"), os.lstat("/"))]
    current, todo, hops = Path("/"), list(Path(path).absolute().parts[1:]), 0
    while todo:
        part = todo.pop(0)  # pathlib drops "." and empty parts; ".." stays and is resolved here, after any link
        if part == "..":
            current = current.parent
            continue
        candidate = current / part
        st = candidate.lstat()
        steps.append((candidate, st))
        if stat.S_ISLNK(st.st_mode) and (todo or follow_last):  # a final socket is judged as it is, not followed
            hops += 1
            if hops > 40:
                raise OSError("more than 40 symlinks on the way")
            target = Path(os.readlink(candidate))
            if target.is_absolute():
                current = Path("/")  # judged already, as the first step
            todo = [*target.parts[1 if target.is_absolute() else 0:], *todo]
        else:
            current = candidate
    return steps


def swap_risk(path: Path, st: os.stat_result, *, group_may_write: bool = False) -> str | None:
    """Why another account could replace what lies under this step (`st` its lstat), or None: the step belongs to
    an account other than this user, root and those the user vouches for (`trusted_owners`), or it is a folder
    that others, or a group with other members (unless `group_may_write`), may write to and is not sticky (in a
    sticky folder such as /tmp nobody may remove or rename another's entry). Vouching waives only the owner
    rule: a folder every account may write to is refused whoever owns it."""
    if not hasattr(os, "geteuid"):  # Windows: no POSIX owners or modes to judge
        return None
    kind = "symlink" if stat.S_ISLNK(st.st_mode) else "folder" if stat.S_ISDIR(st.st_mode) else "file"
    if st.st_uid not in trusted_owners():
        return f"the {kind} {path} {another_account(st.st_uid)}"
    group_writes = st.st_mode & 0o020 and not group_may_write and not _only_my_group(st.st_gid)
    open_to_others = st.st_mode & 0o002 or group_writes
    if kind == "folder" and open_to_others and not st.st_mode & stat.S_ISVTX:
        return f"other accounts may write to the folder {path} (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def owned_plain_file(st: os.stat_result, owners: frozenset[int] | None = None) -> bool:
    """Whether `st` (an lstat, or the fstat of a file opened) is a plain file of one of `owners` (default
    `trusted_owners()`): a file the engine made, or may read as its own, and not one another account put at its
    name. True where the system has no POSIX accounts."""
    if not hasattr(os, "geteuid"):
        return True
    return stat.S_ISREG(st.st_mode) and st.st_uid in (trusted_owners() if owners is None else owners)


def another_account(uid: int) -> str:
    """"belongs to another account (uid N…)", with the way out where that account is the user's own."""
    return (f"belongs to another account (uid {uid}; if that account is yours, as when a container run as root "
            f"writes to a host folder, add {uid} to ${TRUSTED_UIDS_ENV})")


def held_by_another_account(folder: Path) -> str | None:
    """Why another account could swap the files the engine writes into `folder`, or None: the folder (or a symlink
    standing for it) belongs to an account other than this user, root and `trusted_owners`, or every account may
    write to it and it is not sticky. A group-writable folder passes: run and release folders often sit in a
    project folder shared with a group on purpose. None, too, where the system has no POSIX accounts."""
    for st in (os.lstat(folder), os.stat(folder)):
        if risk := swap_risk(folder, st, group_may_write=True):
            return risk
    return None


def _only_my_group(gid: int) -> bool:
    """Whether `gid` is this user's own group (the user-private-group scheme of Debian and Ubuntu, whose umask 002
    leaves the user's folders group-writable): the user's primary group, named after the user, no other members."""
    import grp
    import pwd

    try:
        me, group = pwd.getpwuid(os.geteuid()), grp.getgrgid(gid)
    except KeyError:  # an account or group with no entry: nothing shows it is the user's own
        return False
    return gid == me.pw_gid and group.gr_name == me.pw_name and set(group.gr_mem) <= {me.pw_name}


def trusted_folder(path, what: str, fix: str) -> Path:
    """`path` as a folder of this user's: missing folders are made (mode 0755 whatever the umask), then every
    folder and symlink on the way to it, and the folder itself, must pass `swap_risk`. Otherwise a ConfigError,
    one line: "`what` PATH: <why>, so another account could <...>; `fix`". Returns the path."""
    path = Path(path)
    try:
        make_folders(path)
        risk = path_swap_risk(path)
        is_folder = path.is_dir()
    except OSError as e:
        raise ConfigError(f"{what} {path}: cannot make or reach it ({e.strerror or e})") from None
    if not is_folder:
        raise ConfigError(f"{what} {path} is not a folder")
    if risk:
        raise ConfigError(f"{what} {path}: {risk}, so that account could swap what the engine reads there or "
                          f"read what it writes; {fix}")
    return path


def path_swap_risk(path: Path, *, group_may_write: bool = False) -> str | None:
    """Why another account could swap `path` or anything under it (`swap_risk` of the first unsafe step among the
    folders and symlinks on the way to it, `path` itself included and followed), or None. OSError as
    `resolution_steps`."""
    for step, st in resolution_steps(path, follow_last=True):
        if risk := swap_risk(step, st, group_may_write=group_may_write):
            return risk
    return None


def tree_swap_risk(path) -> str | None:
    """Why another account could swap `path` or anything in it, for a model folder or file the engine loads (its
    weights decide every vector, and a local LLM's answers decide what is published: names, facets, the privacy
    audit), or None. The steps on the way follow `path_swap_risk` (a group's folder passes, and a sticky one such
    as /tmp); inside the model folder, or beside a model file (its loader reads a tokenizer's files there too),
    every folder, file and symlink (followed, through every step to its target) must belong to this user, root or
    an account the user vouches for, and none may be writable by every account, sticky or not: in a folder others
    may add to, a file they plant is loaded too. OSError as `resolution_steps`."""
    path = Path(path)
    if risk := path_swap_risk(path, group_may_write=True):
        return risk
    # A single-file model (GGUF) is judged with its folder and what lies beside it, a model folder whole.
    single_file = not path.is_dir()
    root = path.parent if single_file else path
    if (st := os.stat(root)).st_mode & 0o002:  # sticky passes on the way, not for the model's own folder
        return _open_to_all(root, st)
    seen = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link loop, or one folder reached twice: judged once
            subfolders[:] = []
            continue
        seen.add(real)
        for name in [*subfolders, *files]:
            entry = Path(folder) / name
            if risk := _entry_risk(entry, os.lstat(entry)):
                return risk
        if single_file:  # what lies beside the file, not the folders under it
            subfolders[:] = []
    return None


def trusted_model(path, setting: str, role: str) -> Path:
    """`path`, a model folder or file, once `tree_swap_risk` found nothing another account could swap in it;
    otherwise a ModelError, one line: "`setting` PATH: <why>, so that account could swap the model `role`; …"."""
    path = Path(path)
    try:
        risk = tree_swap_risk(path)
    except OSError as e:
        raise ModelError(f"{setting} {path}: cannot read it ({e.strerror or e})") from None
    if risk:
        raise ModelError(f"{setting} {path}: {risk}, so that account could swap the model {role}; load a model "
                         "from a folder only you (or your group) can write to")
    return path


def _entry_risk(entry: Path, st: os.stat_result) -> str | None:
    """`tree_swap_risk` of one entry of a model's folder (`st` its lstat): a symlink through every step to its
    target, anything else by its owner; then, followed, writable by every account."""
    if stat.S_ISLNK(st.st_mode):
        risk = path_swap_risk(entry, group_may_write=True)
        st = os.stat(entry)
    else:
        risk = swap_risk(entry, st, group_may_write=True)
    return risk or (_open_to_all(entry, st) if st.st_mode & 0o002 else None)


def _open_to_all(path: Path, st: os.stat_result) -> str:
    kind = "folder" if stat.S_ISDIR(st.st_mode) else "file"
    return f"every account may write to the {kind} {path} (mode {stat.S_IMODE(st.st_mode):o})"


def make_folders(path: Path, mode: int = OWN_FOLDER) -> None:
    """Each missing folder of `path` made with `mode` less the umask (Path.mkdir(parents=True) gives parents the
    umask's mode alone, which a umask of 002 leaves group-writable and one of 0 open to all)."""
    missing = []
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:  # made meanwhile by another process: judged like any folder found
            pass
