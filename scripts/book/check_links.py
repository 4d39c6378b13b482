#!/usr/bin/env python3
"""Checks the links of the built book and of Markdown files; standard library only.

    check_links.py BOOK_DIR [--summary SUMMARY.md] [--markdown FILE]... [--verbose]

BOOK_DIR is mdBook's HTML output (.build/book). In every page, each relative `href` or `src`
must name a file inside BOOK_DIR (a directory stands for its index.html), and a `#fragment`
must be an `id` (or an `<a name>`) of the page it points to. Each --markdown file (README.md)
is checked as GitHub renders it: a relative link must name a file or directory that exists,
and a `#fragment` into a Markdown file must be one of its headings. External links (http,
https, mailto, ...) are counted, never fetched: there is no network here. Exits 1 with the
list of broken links, 0 otherwise. With --summary, every Markdown file beside SUMMARY.md (and
below it) must be a chapter listed there: mdBook renders no other, so a page left out of
SUMMARY.md would be missing from the book without a word.
"""

from __future__ import annotations

import os
import re
import sys
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

LINK_ATTRIBUTES = {"href", "src"}


class Page(HTMLParser):
    """The ids a page defines and the links it makes (with their line numbers)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[int, str]] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base":
            self.base = dict(attrs).get("href")
            return
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif name in LINK_ATTRIBUTES:
                self.links.append((self.getpos()[0], value))

    handle_startendtag = handle_starttag


def external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme) or url.startswith("//")


class BookChecker:
    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.pages: dict[str, Page] = {}
        self.broken: list[str] = []
        self.checked = 0
        self.external: set[str] = set()

    def page(self, path: str) -> Page:
        if path not in self.pages:
            parser = Page()
            with open(path, encoding="utf-8") as f:
                parser.feed(f.read())
            parser.close()
            self.pages[path] = parser
        return self.pages[path]

    def run(self) -> None:
        html_files = []
        for directory, _, files in os.walk(self.root):
            html_files += [os.path.join(directory, f) for f in files if f.endswith(".html")]
        if not html_files:
            self.broken.append(f"{self.root}: no HTML page at all (did the build run?)")
        for path in sorted(html_files):
            for line, url in self.page(path).links:
                self.check(path, line, url)

    def check(self, page: str, line: int, url: str) -> None:
        self.checked += 1
        where = f"{os.path.relpath(page, self.root)}:{line}: {url}"
        if external(url):
            self.external.add(url)
            return
        parts = urlsplit(url)
        # mdBook's 404 page is served at any depth, so it names its base: the site's root
        # (`output.html.site-url`, "/" by default), which is the book's root here.
        base = self.page(page).base
        if base is not None and not base.startswith("/"):
            self.broken.append(f"{where}: the page's <base href={base!r}> is not a path from the site's root")
            return
        if not parts.path:
            target = page
        else:
            path = unquote(parts.path)
            if base is not None:
                # Relative links resolve against the base, which is the book's root; an
                # absolute one must lead there first.
                if path.startswith("/"):
                    if not path.startswith(base):
                        self.broken.append(f"{where}: outside the site's root {base!r}")
                        return
                    path = path[len(base):]
                directory = self.root
            elif path.startswith("/"):
                self.broken.append(f"{where}: an absolute path, which depends on where the book is served")
                return
            else:
                directory = os.path.dirname(page)
            target = os.path.normpath(os.path.join(directory, path))
            if os.path.commonpath([self.root, os.path.realpath(target)]) != self.root:
                self.broken.append(f"{where}: leads out of the book")
                return
            if os.path.isdir(target):
                target = os.path.join(target, "index.html")
            if not os.path.isfile(target):
                self.broken.append(f"{where}: no such file in the book")
                return
        fragment = unquote(parts.fragment)
        if fragment and target.endswith(".html") and fragment not in self.page(target).ids:
            self.broken.append(f"{where}: no id {fragment!r} in {os.path.relpath(target, self.root)}")


# Markdown, as GitHub renders it.

FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML_LINK = re.compile(r"""<(?:a|img|source)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def markdown_lines(path: str):
    """The lines of a Markdown file outside code blocks, with their numbers."""
    fence = None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            match = FENCE.match(line)
            if match:
                if fence is None:
                    fence = match.group(1)
                elif match.group(1) == fence:
                    fence = None
                continue
            if fence is None:
                yield number, line.rstrip("\n")


def github_slug(text: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: str) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in markdown_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        if slug in seen:
            seen[slug] += 1
            found.add(f"{slug}-{seen[slug]}")
        else:
            seen[slug] = 0
            found.add(slug)
    return found


def check_markdown(path: str, broken: list[str], external_links: set[str]) -> int:
    checked = 0
    base = os.path.dirname(os.path.abspath(path))
    for number, line in markdown_lines(path):
        text = INLINE_CODE.sub("", line)
        urls = [m.group(1) for m in INLINE_LINK.finditer(text)]
        urls += [m.group(1) for m in HTML_LINK.finditer(text)]
        urls += [m.group(1) for m in REFERENCE.finditer(text)]
        for url in urls:
            checked += 1
            where = f"{path}:{number}: {url}"
            if external(url):
                external_links.add(url)
                continue
            parts = urlsplit(url)
            target = os.path.normpath(os.path.join(base, unquote(parts.path))) if parts.path else path
            if not os.path.exists(target):
                broken.append(f"{where}: no such file")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.endswith(".md") and fragment.lower() not in anchors(target):
                broken.append(f"{where}: no heading {fragment!r} in {os.path.relpath(target)}")
    return checked


def unlisted_chapters(summary: str, broken: list[str]) -> None:
    src = os.path.dirname(os.path.abspath(summary))
    listed = set()
    for _, line in markdown_lines(summary):
        for match in INLINE_LINK.finditer(line):
            listed.add(os.path.normpath(os.path.join(src, unquote(urlsplit(match.group(1)).path))))
    for directory, _, files in os.walk(src):
        for name in sorted(files):
            path = os.path.join(directory, name)
            if name.endswith(".md") and path != os.path.abspath(summary) and path not in listed:
                broken.append(f"{os.path.relpath(path)}: a Markdown file of the book that {summary} does not list")


def main(argv: list[str]) -> int:
    args = argv[1:]
    verbose = "--verbose" in args
    args = [a for a in args if a != "--verbose"]
    options: dict[str, list[str]] = {"--markdown": [], "--summary": []}
    for option, values in options.items():
        while option in args:
            i = args.index(option)
            if i + 1 >= len(args):
                print(__doc__, file=sys.stderr)
                return 2
            values.append(args[i + 1])
            del args[i : i + 2]
    markdown = options["--markdown"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2

    book = BookChecker(args[0])
    book.run()
    broken = list(book.broken)
    external_links = set(book.external)
    print(
        f"book: {len(book.pages)} pages, {book.checked} links "
        f"({len(book.external)} distinct external ones, not fetched)"
    )
    for summary in options["--summary"]:
        unlisted_chapters(summary, broken)
    for path in markdown:
        before = len(external_links)
        count = check_markdown(path, broken, external_links)
        print(f"{path}: {count} links ({len(external_links) - before} more external ones, not fetched)")
    if verbose:
        for url in sorted(external_links):
            print(f"  external, not fetched: {url}")
    sys.stdout.flush()
    if broken:
        print(f"{len(broken)} broken link(s) or unlisted chapter(s):", file=sys.stderr)
        for entry in broken:
            print(f"  {entry}", file=sys.stderr)
        return 1
    print("no broken link")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
