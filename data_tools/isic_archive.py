"""Select and download images from the ISIC Archive through its public API.

The ISIC Archive's official client, ``isic-cli`` (``isic image download --search
'diagnosis:"melanoma"' images/``), pages through the archive's public search
endpoint, ``<api>/images/search/?query=<search>``, whose JSON answer is ``{"count",
"next", "results": [{"isic_id", "files": {"full": {"url"}}, ...}]}``. This module
asks the same endpoint with the same search syntax (no scraping, no login: the
public images need none), so that a selection is made from Python and can be
tested against a local server:

1. :func:`search_images` lists the images of a search, page by page;
2. :func:`select_sample` draws a seeded sample of given size per class, leaving out
   listed ids (e.g. the images of a challenge, which would leak into its test set);
3. :func:`download_images` fetches the full-size images (through
   :func:`data_tools.download.download_file`: resumed, retried, verified) and checks
   that each one decodes as an image (an HTML error page served with status 200 is
   refused), writing ``<id>.jpg`` files.

``ISIC_ARCHIVE_API`` or ``api_url=`` points at a mirror (tests use ``127.0.0.1``).
"""

from __future__ import annotations

import json
import os
import random
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from data_tools.download import DownloadError, download_file
from data_tools.layouts import ISIC_IMAGE_ID, ISIC_IMAGE_SUFFIX

DEFAULT_API_URL = "https://api.isic-archive.com/api/v2"
API_URL_ENV = "ISIC_ARCHIVE_API"
PAGE_LIMIT = 100
MAX_PAGES = 10_000  # a bound on the paging loop: a server whose "next" never ends stops here
_ID_IN_NAME = re.compile(r"ISIC_\d{7}")


def resolve_api_url(api_url: str | None = None) -> str:
    """``api_url``, else ``$ISIC_ARCHIVE_API``, else the public archive's, without a final ``/``."""
    return (api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL).rstrip("/")


def _get_json(url: str, timeout: float) -> Mapping:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            kind = response.headers.get("Content-Type", "")
            body = response.read()
    except (OSError, urllib.error.URLError) as error:
        raise DownloadError(url, f"the ISIC Archive API did not answer ({error})") from error
    if "json" not in kind:
        raise DownloadError(url, f"expected a JSON answer, got Content-Type {kind!r}")
    try:
        answer = json.loads(body)
    except ValueError as error:
        raise DownloadError(url, f"the answer is not valid JSON ({error})") from error
    if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
        raise DownloadError(url, "the answer has no 'results' list: not an ISIC Archive search page")
    return answer


def search_images(search: str, *, api_url: str | None = None, timeout: float = 60.0) -> Iterator[tuple[str, str]]:
    """``(isic_id, full-size image URL)`` of every image that ``search`` finds.

    Raises:
        DownloadError: unreachable API, an answer that is not a search page, or a
            result without an ISIC id or an image URL (the message names the URL).
    """
    url = f"{resolve_api_url(api_url)}/images/search/?" + urllib.parse.urlencode({"query": search, "limit": PAGE_LIMIT})
    for _ in range(MAX_PAGES):
        page = _get_json(url, timeout)
        for result in page["results"]:
            isic_id = result.get("isic_id") if isinstance(result, dict) else None
            full = ((result.get("files") or {}).get("full") or {}).get("url") if isinstance(result, dict) else None
            if not isinstance(isic_id, str) or not ISIC_IMAGE_ID.match(isic_id) or not full:
                raise DownloadError(url, f"a result without an ISIC id and a full-size image URL: {result!r:.200}")
            yield isic_id, full
        url = page.get("next")
        if not url:
            return
    raise DownloadError(url, f"more than {MAX_PAGES} pages: the search does not end")


def select_sample(
    candidates: Mapping[str, Mapping[str, str]],
    counts: Mapping[str, int],
    *,
    exclude: set[str] = frozenset(),
    seed: int = 0,
) -> dict[str, dict[str, str]]:
    """A seeded sample of ``counts[c]`` images of each class ``c``.

    Args:
        candidates: per class, ``{isic_id: url}`` of the images found.
        counts: per class, how many to draw.
        exclude: ids never drawn (e.g. the challenge's own images).
        seed: the sample depends only on it and on the candidates (sorted by id).

    Raises:
        ValueError: a class with fewer candidates than asked for (after the
            exclusions), or an image found under two classes.
    """
    seen: dict[str, str] = {}
    for name, images in candidates.items():
        for isic_id in images:
            if isic_id in seen:
                raise ValueError(
                    f"{isic_id} is found as {seen[isic_id]!r} and as {name!r}: the "
                    "searches overlap; make them exclusive."
                )
            seen[isic_id] = name
    rng = random.Random(seed)
    sample = {}
    for name, count in counts.items():
        pool = sorted(set(candidates.get(name, {})) - set(exclude))
        if len(pool) < count:
            raise ValueError(
                f"class {name!r}: {count} images asked for, {len(pool)} found "
                f"(after leaving out {len(exclude)} excluded ids)."
            )
        sample[name] = {isic_id: candidates[name][isic_id] for isic_id in sorted(rng.sample(pool, count))}
    return sample


def download_images(
    urls: Mapping[str, str], dest: str | Path, *, timeout: float = 60.0, progress: bool = True
) -> dict[str, Path]:
    """Downloads ``{isic_id: url}`` to ``dest/<isic_id>.jpg``; existing files that decode are kept.

    Raises:
        DownloadError: a failed download, or a file that does not decode as an image
            (it is deleted, so the next run fetches it again).
    """
    dest = Path(dest)
    paths = {}
    for isic_id, url in tqdm(sorted(urls.items()), desc="ISIC Archive images", unit="image", disable=not progress):
        path = dest / f"{isic_id}{ISIC_IMAGE_SUFFIX}"
        if not (path.is_file() and _decodes(path)):
            download_file(url, path, timeout=timeout, progress=False)
            if not _decodes(path):
                path.unlink()
                raise DownloadError(url, f"the file for {isic_id} is not an image (an error page?); deleted")
        paths[isic_id] = path
    return paths


def _decodes(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except (OSError, UnidentifiedImageError, SyntaxError):
        return False


def search_all(
    searches: Mapping[str, str],
    *,
    api_url: str | None = None,
    timeout: float = 60.0,
) -> dict[str, dict[str, str]]:
    """:func:`search_images` for each ``{class: search}``: ``{class: {isic_id: url}}``."""
    return {name: dict(search_images(search, api_url=api_url, timeout=timeout)) for name, search in searches.items()}


def read_ids(paths: Sequence[str | Path]) -> set[str]:
    """Every ISIC image id named in the given files or folders' file names (recursively)."""
    ids = set()
    for root in map(Path, paths):
        files = root.rglob("*") if root.is_dir() else [root]
        for path in files:
            match = _ID_IN_NAME.search(path.name)
            if match:
                ids.add(match.group(0))
    return ids
