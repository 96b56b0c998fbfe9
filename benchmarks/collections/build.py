#!/usr/bin/env python3
"""Build judged retrieval collections (BEIR layout).

Forty-one collections are written under the directory of this script:

  manpages         Debian man pages (man1, man8); long multi-sentence queries.
  debian-packages  Debian package descriptions; short rare-term keyword queries.
  pydoc            Python standard-library docstrings; natural-language
                   summary queries.
  info-index       GNU Info manuals (/usr/share/info), one document per node;
                   the queries are the manuals' own concept-index entries.
  perldiag         Perl's diagnostics (perldiag.pod): the query is an error
                   message, the document its explanation.
  info-extra       as info-index, from the Info manuals of Debian packages not
                   installed here, unpacked under /tmp/info-extra (README.md).
  perlfaq          the Perl FAQ (perlfaq1-9.pod of Debian's perl-doc, unpacked
                   under /tmp/perlfaq, README.md): the query is a question, the
                   document its answer.
  pyfaq            the Python FAQ (faq/*.html of Debian's python3.11-doc,
                   unpacked under /tmp/pyfaq, README.md): as perlfaq.
  debfaq           the Debian FAQ (*.en.html of Debian's debian-faq, unpacked
                   under /tmp/debfaq, README.md): as pyfaq.
  efaq             the GNU Emacs FAQ (the Info manual efaq of Debian's
                   emacs-common, unpacked under /tmp/efaq, README.md): as
                   debfaq, one item per Info node.
  zshfaq           the Z-Shell FAQ (FAQ01-06.html of Debian's zsh-doc, unpacked
                   under /tmp/zshfaq, README.md): as debfaq.
  fetchfaq         the Fetchmail FAQ (fetchmail-FAQ.html of Debian's fetchmail,
                   unpacked under /tmp/fetchfaq, README.md): as zshfaq.
  rfaq             the R FAQ (the Info manual R-FAQ of Debian's r-doc-info,
                   unpacked under /tmp/rfaq, README.md): as efaq.
  policy           the Debian Policy Manual (the HTML of Debian's
                   debian-policy, unpacked under /tmp/policy, README.md): the
                   query is a section's heading, the document its text.
  devref           the Debian Developer's Reference (the HTML of Debian's
                   developers-reference, unpacked under /tmp/devref,
                   README.md): as policy.
  pyglossary       the Python glossary (glossary.html of Debian's
                   python3.11-doc, unpacked under /tmp/pyfaq, README.md): the
                   query is a term, the document its definition.
  gitglossary      the Git glossary (the man page gitglossary(7) of Debian's
                   git-man, installed here): as pyglossary.
  pgglossary       the PostgreSQL 15 glossary (glossary.html of Debian's
                   postgresql-doc-15, unpacked under /tmp/pgdoc, README.md):
                   as pyglossary.
  debref           the Debian Reference (the HTML of Debian's
                   debian-reference-en, unpacked under /tmp/debref,
                   README.md): as devref.
  perlglossary     Perl's glossary (perlglossary.pod of Debian's perl-doc,
                   unpacked under /tmp/perlfaq, README.md): as pyglossary.
  emacsglossary    the Glossary node of the GNU Emacs manual (the Info manual
                   emacs of Debian's emacs-common-non-dfsg, unpacked under
                   /tmp/emacsglossary, README.md): as pyglossary.
  jargon           the Jargon File 4.4.7 (the dictd database of Debian's
                   dict-jargon, unpacked under /tmp/dict-jargon, README.md):
                   as pyglossary, the query a headword (1-3 words), the
                   document its entry's text.  Held out of round 12.
  foldoc           the Free On-line Dictionary of Computing (the dictd database
                   of Debian's dict-foldoc, unpacked under /tmp/dict-foldoc,
                   README.md): as jargon, over a seeded sample of 3,000 of its
                   entries.  Held out of round 12.
  devil            The Devil's Dictionary of Ambrose Bierce (the dictd database
                   of Debian's dict-devil, unpacked under /tmp/dict-devil,
                   README.md): as jargon, the query a headword (lower-cased),
                   over a seeded sample of 450 of its entries.  Held out of
                   round 13.
  mannames         man pages (as manpages: man1, man8) of commands named by
                   one word ("rsync"): the query is the name, the document the
                   page without its NAME line, over a seeded sample of 450
                   pages.  Held out of round 13.
  pymodules        pages of the Python 3.11 library reference (library/*.html
                   of Debian's python3.11-doc, unpacked under /tmp/pyfaq,
                   README.md) of modules named by one word ("shutil"): as
                   mannames, the query the name, the document the page without
                   its title.  Held out of round 14.
  wordnet          WordNet 3.0 (the dictd database of Debian's dict-wn,
                   unpacked under /tmp/dict-wn, README.md): as jargon, the
                   query a headword of one word (lower-cased), over a seeded
                   sample of 450 of its entries.  Held out of round 14.
  gitcommands      Git's man pages git-NAME.1 (Debian's git-man, installed
                   here) of commands named by one word ("rebase"): as
                   mannames, the query the NAME, the document the page
                   without its NAME section.  Held out of round 14's final
                   default.
  perlfunc         Perl's built-in functions (perlfunc.pod of Debian's
                   perl-doc, unpacked under /tmp/perlfaq, README.md): the
                   query a function's name ("chomp"), the document its entry
                   without its =item lines.  Held out of round 14's final
                   default.
  perlmods         Perl's core modules (the .pm files of Debian's
                   perl-modules-5.36 under /usr/share/perl/5.36, installed
                   here): the query a module's name ("File::Temp"), the
                   document its POD without its NAME section.  Held out of
                   round 15.
  debsynopsis      Debian packages read as debian-packages: the query a
                   package's synopsis (its short description), the document
                   its long description, none of them debian-packages'.
                   Held out of round 15.
  cfuncs           C library functions' man pages (man3 of Debian's
                   manpages-dev, installed here) named by one word
                   ("malloc"): as gitcommands, the query the name, the
                   document the page without its NAME section, over a seeded
                   sample of 450 pages.  Held out of round 15.
  vera             V.E.R.A., the Virtual Entity of Relevant Acronyms (the
                   dictd database of Debian's dict-vera, unpacked under
                   /tmp/dict-vera, README.md): as wordnet, the query an
                   acronym ("APM"), the document its expansions, over a
                   seeded sample of 450 of its acronyms.  Held out of round 15.
  syscalls         Linux system calls' man pages (man2 of Debian's
                   manpages-dev, installed here) named by one word
                   ("fork"): as cfuncs, the query the name, the document the
                   page without its NAME section.  Held out of round 16.
  pyhowto          the Python HOWTOs (howto/*.html of Debian's python3.11-doc,
                   unpacked under /tmp/pyfaq, README.md): as policy, the query
                   a section's heading (h2, h3), the document its text, of
                   150+ words.  Held out of round 16.
  musicglossary    LilyPond's Music Glossary (the Info manual music-glossary
                   of Debian's lilypond-doc, unpacked under /tmp/lilypond-doc,
                   README.md): as emacsglossary, the query a musical term
                   ("accelerando"), the document its short definition without
                   its translations.  Built blind for round 17.
  pychangelog      Python 3.11's changelog entries (whatsnew/changelog.html.gz
                   of Debian's python3.11-doc, unpacked under /tmp/pyfaq,
                   README.md): short documents, a seeded sample of 400; the
                   query 2-3 of an entry's rare terms, as debian-packages'
                   (noise-free).  Built blind for round 17.
  pgreference      PostgreSQL 15's reference pages (the HTML of Debian's
                   postgresql-doc-15, unpacked under /tmp/pgdoc, README.md):
                   as pyfaq, the query a page's purpose from its NAME line
                   ("abort the current transaction"), the document the first
                   paragraph of its Description.  Built blind for round 18.
  gitconfig        Git's configuration variables (git-config(1) of Debian's
                   git-man, installed here): as gitglossary, the query a
                   variable's name ("core.autocrlf"), the document its
                   description, over a seeded sample of 400 of the entries.
                   Built blind for round 18.
  pgconfig         PostgreSQL 15's server configuration parameters
                   (runtime-config-*.html of Debian's postgresql-doc-15,
                   unpacked under /tmp/pgdoc, README.md): as gitconfig, the
                   query a parameter's name ("work_mem"), the document the
                   first paragraph of its description.  Built blind for
                   round 19.
  vimoptions       Vim's options (options.txt of Debian's vim-runtime,
                   installed here): as gitconfig, the query an option's name
                   ("autoindent"), the document the first paragraph of its
                   help text.  Built blind for round 19.

Each collection directory holds corpus.jsonl, queries.jsonl and test.tsv.
The queries of the first three are simulated known-item topics in the style
of Azzopardi, de Rijke & Balog, "Building simulated queries for known-item
topics" (SIGIR 2007); those of info-index were written by the manuals'
authors.

Standard library only; deterministic for a given machine state (installed
man pages, Info manuals, apt lists, Python version).  See README.md in this
directory.

Usage:  python3 benchmarks/collections/build.py [--only NAME]
"""

import argparse
import ast
import collections
import concurrent.futures
import glob
import gzip
import html
import html.parser
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import sysconfig
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = HERE  # where collections are written (--out)
COLLECTIONS = ("manpages", "debian-packages", "pydoc", "info-index", "perldiag", "info-extra", "perlfaq", "pyfaq",
               "debfaq", "efaq", "zshfaq", "fetchfaq", "rfaq", "policy", "devref", "pyglossary",
               "gitglossary", "pgglossary", "debref", "perlglossary", "emacsglossary", "jargon", "foldoc", "devil",
               "mannames", "pymodules", "wordnet", "gitcommands", "perlfunc", "perlmods", "debsynopsis",
               "cfuncs", "vera", "syscalls", "pyhowto", "musicglossary", "pychangelog", "pgreference", "gitconfig",
               "pgconfig", "vimoptions")

STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because
been before being below between both but by can could did do does doing down
during each either else etc few for from further had has have having he her
here hers herself him himself his how however i if in into is it its itself
just least less may me might more most much must my myself no nor not now of
off on once one only or other others ought our ours ourselves out over own per
rather same shall she should since so some such than that the their theirs
them themselves then there these they this those though through thus to too
under until up upon us use used uses using very via was we well were what when
where whether which while who whom whose why will with within without would
yet you your yours yourself yourselves
""".split())

WORD_RE = re.compile(r"[A-Za-z0-9]+")


def words(text):
    return text.split()


def norm_ws(text):
    return re.sub(r"\s+", " ", text).strip()


_ABBREV_END = re.compile(r"(?:\b(?:e\.g|i\.e|cf|vs|approx|etc|resp|viz|al|no|Dr|Mr|Mrs|Ms|St)\.)$", re.I)


def split_sentences(text):
    """Split a paragraph into sentences (simple rule-based splitter)."""
    parts = re.split(r"(?<=[.!?])(?<!\.\.\.)\s+(?=[A-Z(\"'])", text)
    out = []
    for p in parts:
        p = p.strip()
        if not p:
            continue
        if out and _ABBREV_END.search(out[-1]) and not out[-1].lower().endswith("etc."):
            out[-1] = out[-1] + " " + p
        else:
            out.append(p)
    return out


def write_collection(name, docs, queries, qrels):
    """docs: list of (id, title, text); queries: list of (id, text);
    qrels: list of (qid, docid, score).  Written sorted, UTF-8, \\n."""
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "corpus.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for did, title, text in sorted(docs):
            f.write(json.dumps({"_id": did, "title": title, "text": text}, ensure_ascii=False) + "\n")
    with open(os.path.join(d, "queries.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for qid, text in sorted(queries):
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with open(os.path.join(d, "test.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, did, score in sorted(qrels):
            f.write(f"{qid}\t{did}\t{score}\n")
    size = os.path.getsize(os.path.join(d, "corpus.jsonl"))
    print(f"[{name}] wrote {len(docs)} docs ({size/1e6:.2f} MB), {len(queries)} queries, "
          f"{len(qrels)} judgments", file=sys.stderr)


# ---------------------------------------------------------------------------
# 1. manpages
# ---------------------------------------------------------------------------

MAN_SEED = 20070723
MAN_DIRS = ("/usr/share/man/man1", "/usr/share/man/man8")
MAN_MAX_PAGES = 4000
MAN_N_QUERIES = 150
MAN_DOC_MIN_WORDS, MAN_DOC_MAX_WORDS = 120, 180
MAN_Q_MIN_WORDS, MAN_Q_MAX_WORDS = 40, 120

MAN_ENV = {k: v for k, v in os.environ.items()
           if k not in ("MAN_KEEP_FORMATTING", "MANPAGER", "PAGER", "MANOPT", "MANROFFOPT",
                        "GROFF_SGR", "LANGUAGE")}
MAN_ENV.update({"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "MANWIDTH": "2000",
                "GROFF_NO_SGR": "1", "MAN_DISABLE_SECCOMP": "1"})


def apt_available_packages():
    r = subprocess.run(["apt-cache", "dumpavail"], stdout=subprocess.PIPE, check=True,
                       env=dict(os.environ, LC_ALL="C.UTF-8"))
    return r.stdout.decode("utf-8", "replace")


def man_debian_owned():
    """Files installed by dpkg packages that the Debian archive (the apt
    lists) provides.  This excludes third-party packages such as
    google-cloud-cli, whose ~16,600 generated gcloud_* pages would otherwise
    swamp the sample."""
    debian = {m.group(1) for m in re.finditer(r"^Package: (\S+)$", apt_available_packages(), re.M)}
    owned = set()
    for lst in sorted(glob.glob("/var/lib/dpkg/info/*.list")):
        pkg = os.path.basename(lst)[:-5].split(":")[0]
        if pkg not in debian:
            continue
        with open(lst, encoding="utf-8", errors="replace") as f:
            owned.update(l.rstrip("\n") for l in f)
    return owned


def man_list_pages(dirs=MAN_DIRS):
    """Real (non-symlink, non-.so-stub) English pages in man1/man8 (dirs) that
    belong to Debian-archive packages, sorted."""
    owned = man_debian_owned()
    pages = []
    for d in dirs:
        for fn in sorted(os.listdir(d)):
            path = os.path.join(d, fn)
            if os.path.islink(path) or not os.path.isfile(path) or path not in owned:
                continue
            try:
                opener = gzip.open if fn.endswith(".gz") else open
                with opener(path, "rb") as f:
                    head = f.read(512)
            except OSError:
                continue
            stripped = b"\n".join(l for l in head.split(b"\n")
                                  if not l.startswith(b'.\\"') and not l.startswith(b"'\\\""))
            if stripped.lstrip().startswith(b".so "):
                continue
            pages.append(path)
    return sorted(pages)


def man_render(path):
    try:
        r = subprocess.run(["man", "--nh", "--nj", "-E", "UTF-8", "-P", "cat", "-l", path],
                           env=MAN_ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=60)
    except (subprocess.TimeoutExpired, OSError):
        return None
    if r.returncode != 0:
        return None
    s = r.stdout.decode("utf-8", "replace")
    s = re.sub(r".\x08", "", s)                 # backspace overstrikes
    s = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", s)  # any SGR escapes
    s = s.replace("\u2010", "-").replace("\u2011", "-").replace("\u2212", "-").replace("\u00ad", "")
    s = s.replace("\u2018", "'").replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    return s


def man_parse(rendered):
    """Return ordered list of (SECTION, units); a unit is (kind, tag, body)
    with kind 'prose' or 'item' (tagged paragraph)."""
    lines = rendered.split("\n")
    nonblank = [i for i, l in enumerate(lines) if l.strip()]
    if len(nonblank) < 3:
        return []
    lines = lines[nonblank[0] + 1:nonblank[-1]]  # drop page header and footer
    sections = []
    cur = None
    block = []

    def flush():
        if cur is not None and block:
            cur[1].extend(man_block_units(block))
        block.clear()

    for l in lines:
        if not l.strip():
            flush()
            continue
        indent = len(l) - len(l.lstrip(" "))
        if indent == 0:
            flush()
            cur = (norm_ws(l).upper(), [])
            sections.append(cur)
            continue
        if indent <= 4:   # .SS sub-heading
            flush()
            continue
        block.append((indent, l.strip()))
    flush()
    return sections


def man_block_units(block):
    # hyphenation artefacts: "foo-" + "bar" across lines (hyphenation is off,
    # but some pages hard-code it)
    merged = []
    for ind, t in block:
        if merged and re.search(r"[a-z]-$", merged[-1][1]) and re.match(r"[a-z]", t) \
                and not re.search(r"(^|\s)-", merged[-1][1].split()[-1]) and ind == merged[-1][0]:
            merged[-1] = (merged[-1][0], merged[-1][1][:-1] + t)
        else:
            merged.append((ind, t))
    block = merged
    ind0, first = block[0]
    if len(block) > 1 and block[1][0] > ind0:
        return [("item", first, norm_ws(" ".join(t for _, t in block[1:])))]
    m = re.match(r"^(\S.*?\S|\S)\s{2,}(\S.*)$", first)
    if m and re.match(r"^[-+]", first):
        body = m.group(2) + " " + " ".join(t for _, t in block[1:])
        return [("item", m.group(1), norm_ws(body))]
    return [("prose", "", norm_ws(" ".join(t for _, t in block)))]


def man_codeish(tok):
    return bool(re.match(r"^[-+]", tok) or re.search(r"[/=_{}\[\]<>$\\|@~`;#*]", tok)
                or re.search(r"\w\(|\(\)", tok) or re.fullmatch(r"[\d.,:%-]+", tok))


def man_sentence_ok(s):
    toks = s.split()
    if len(toks) < 4:
        return False
    if not re.search(r"[\w)\"'\]][.!?][\"')]*$", s):   # a whole sentence, not a fragment
        return False
    alpha = sum(1 for t in toks if re.fullmatch(r"[\"'(]*[A-Za-z][a-z]*[A-Za-z]?[.,;:!?\"')]*", t))
    code = sum(1 for t in toks if man_codeish(t))
    return alpha / len(toks) >= 0.6 and code / len(toks) <= 0.2


def man_build_page(path, rendered):
    fn = os.path.basename(path)
    if fn.endswith(".gz"):
        fn = fn[:-3]
    name, _, section = fn.rpartition(".")
    if not name or not rendered:
        return None
    secs = man_parse(rendered)
    secmap = {}
    for sname, units in secs:
        secmap.setdefault(sname, units)
    name_units = secmap.get("NAME")
    desc_units = secmap.get("DESCRIPTION")
    if not name_units or not desc_units:
        return None
    title = norm_ws(" ".join((u[1] + " " + u[2]).strip() for u in name_units))
    if not title or len(title) > 300:
        return None
    # sentences of the DESCRIPTION section, in order
    desc_sents = []
    for kind, tag, body in desc_units:
        text = (tag + " " + body).strip() if kind == "item" else body
        for s in split_sentences(text):
            desc_sents.append((kind, s))
    doc, n = [], 0
    cut = 0
    for i, (_, s) in enumerate(desc_sents):
        w = len(s.split())
        if n >= MAN_DOC_MIN_WORDS:
            break
        if n + w > MAN_DOC_MAX_WORDS:
            if not doc:
                doc.append(" ".join(s.split()[:MAN_DOC_MAX_WORDS]))
                n = MAN_DOC_MAX_WORDS
                cut = i + 1
            break
        doc.append(s)
        n += w
        cut = i + 1
    text = " ".join(doc)
    if n < 20:
        return None
    # later text: rest of DESCRIPTION + OPTIONS-like sections (bodies only)
    streams = []
    rest = []
    for kind, tag, body in _units_after(desc_units, cut):
        rest.extend(split_sentences(body))
    streams.append(rest)
    for sname, units in secs:
        if "OPTION" in sname and sname != "DESCRIPTION":
            st = []
            for kind, tag, body in units:
                st.extend(split_sentences(body))
            streams.append(st)
    names = {name}
    left = re.split(r"\s+-+\s+", title, maxsplit=1)[0]
    for nm in re.split(r"[,\s]+", left):
        nm = nm.strip()
        if len(nm) >= 2 and not nm.startswith("-"):
            names.add(nm)
    return {"id": f"{name}.{section}", "title": title, "text": text,
            "streams": streams, "names": sorted(names, key=lambda x: (-len(x), x))}


def _units_after(desc_units, cut):
    """Units of DESCRIPTION from sentence index `cut` on (re-split so that
    sentences already in the document are dropped)."""
    out = []
    k = 0
    for kind, tag, body in desc_units:
        text = (tag + " " + body).strip() if kind == "item" else body
        sents = split_sentences(text)
        if k + len(sents) <= cut:
            k += len(sents)
            continue
        if kind == "item":
            # only the body, and only sentences beyond the cut
            bsents = split_sentences(body)
            skip = max(0, cut - k)
            out.append((kind, tag, " ".join(bsents[skip:]) if skip < len(bsents) else ""))
        else:
            skip = max(0, cut - k)
            out.append((kind, tag, " ".join(sents[skip:])))
        k += len(sents)
    return out


def man_replace_names(text, names):
    for nm in names:
        pat = r"(?<![\w./-])" + re.escape(nm) + r"(?:\(\d\w*\))?(?![\w-]|\.\w)"
        text = re.sub(pat, "the program", text, flags=re.I)
    return text


def man_query_candidates(page):
    cands = []
    for stream in page["streams"]:
        for i in range(len(stream)):
            for k in (2, 3, 4):
                win = stream[i:i + k]
                if len(win) < k:
                    break
                if not all(man_sentence_ok(s) for s in win):
                    break
                if any(s in page["text"] for s in win):
                    break
                q = man_replace_names(" ".join(win), page["names"])
                nw = len(q.split())
                if nw > MAN_Q_MAX_WORDS:
                    break
                if nw >= MAN_Q_MIN_WORDS and man_sentence_ok(q):
                    cands.append(q)
    return cands


def build_manpages():
    rng = random.Random(MAN_SEED)
    pages = man_list_pages()
    print(f"[manpages] {len(pages)} candidate pages", file=sys.stderr)
    if len(pages) > MAN_MAX_PAGES:
        pages = sorted(rng.sample(pages, MAN_MAX_PAGES))
    # two workers only (2-core machine); results kept in input order
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        rendered = list(ex.map(man_render, pages))
    built = []
    for path, r in zip(pages, rendered):
        if r is None or len(r.split()) < 50:
            continue
        p = man_build_page(path, r)
        if p:
            built.append(p)
    built.sort(key=lambda p: p["id"])
    seen_title, seen_text, docs = set(), set(), []
    for p in built:
        tkey, xkey = p["title"].lower(), p["text"].lower()
        if tkey in seen_title or xkey in seen_text:
            continue
        seen_title.add(tkey)
        seen_text.add(xkey)
        docs.append(p)
    print(f"[manpages] rendered {sum(r is not None for r in rendered)}, usable {len(built)}, "
          f"after dedup {len(docs)}", file=sys.stderr)
    qrng = random.Random(MAN_SEED + 1)
    with_q = []
    for p in docs:
        c = man_query_candidates(p)
        if c:
            with_q.append((p["id"], qrng.choice(c)))
    chosen = sorted(qrng.sample(with_q, min(MAN_N_QUERIES, len(with_q))))
    queries, qrels = [], []
    for i, (did, q) in enumerate(chosen):
        qid = f"man-q{i:04d}"
        queries.append((qid, q))
        qrels.append((qid, did, 2))
    write_collection("manpages", [(p["id"], p["title"], p["text"]) for p in docs], queries, qrels)


# ---------------------------------------------------------------------------
# 2. debian-packages
# ---------------------------------------------------------------------------

DEB_SEED = 20070724
DEB_MAX_DOCS = 5000
DEB_N_QUERIES = 200
DEB_MIN_WORDS = 25
DEB_MAX_DF = 5
DEB_MAX_MATCHES = 3
DEB_K_CHOICES = (2, 3)     # query length in terms
DEB_NOISE = 0.4            # Azzopardi et al.'s lambda: P(a query term is noise)
DPKG_STATUS = "/var/lib/dpkg/status"
DEP11_GLOB = "/var/lib/apt/lists/*_dep11_Components-amd64.yml.gz"


def parse_stanzas(text):
    """Debian control-file stanzas -> list of dict(field -> raw value with
    continuation lines, '\\n'-joined)."""
    out = []
    cur, last = {}, None
    for line in text.split("\n"):
        if not line.strip():
            if cur:
                out.append(cur)
            cur, last = {}, None
            continue
        if line[0] in " \t":
            if last is not None:
                cur[last] += "\n" + line
            continue
        k, sep, v = line.partition(":")
        if not sep:
            continue
        last = k.strip()
        cur[last] = v.strip()
    if cur:
        out.append(cur)
    return out


def deb_long_description(raw):
    """Description field -> (short, long text with paragraphs joined by a
    blank line)."""
    lines = raw.split("\n")
    short = lines[0].strip()
    paras, cur = [], []
    for l in lines[1:]:
        body = l[1:] if l.startswith(" ") else l
        if body.strip() == ".":
            if cur:
                paras.append(norm_ws(" ".join(cur)))
            cur = []
        else:
            cur.append(body.strip())
    if cur:
        paras.append(norm_ws(" ".join(cur)))
    return short, "\n\n".join(p for p in paras if p)


def _yaml_scalar(first, cont):
    """Decode the YAML scalar that starts with `first` (text after 'C: ')
    and continues on lines `cont` (already stripped).  Handles the styles
    used in DEP-11 files: double-quoted, single-quoted, block, plain."""
    if first.startswith('"'):
        raw = first[1:]
        for c in cont:
            if raw.endswith("\\") and not raw.endswith("\\\\"):
                raw = raw[:-1] + c
            else:
                raw = raw + " " + c
        raw = raw.rstrip()
        if raw.endswith('"'):
            raw = raw[:-1]
        esc = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", " ": " ", "0": "",
               "r": "", "N": "\u0085", "_": "\u00a0", "L": "\u2028", "P": "\u2029"}

        def rep(m):
            e = m.group(1)
            if e[0] in "xuU":
                try:
                    return chr(int(e[1:], 16))
                except ValueError:
                    return ""
            return esc.get(e, e)
        return re.sub(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)", rep, raw)
    if first.startswith("'"):
        raw = " ".join([first[1:]] + cont).rstrip()
        if raw.endswith("'"):
            raw = raw[:-1]
        return raw.replace("''", "'")
    if first[:1] in "|>":
        return "\n".join(cont)
    return " ".join([first] + cont)


def html_to_text(s):
    s = re.sub(r"(?i)</?(p|ul|ol|li|br)\b[^>]*>", "\n\n", s)
    s = re.sub(r"<[^>]+>", " ", s)
    s = html.unescape(s)
    paras = [norm_ws(p) for p in re.split(r"\n\s*\n", s)]
    return "\n\n".join(p for p in paras if p)


def parse_dep11(path):
    """Package -> (summary, description) for C-locale DEP-11 components."""
    out = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        docs = f.read().split("\n---\n")
    for d in docs:
        lines = d.split("\n")
        pkg, fields = None, {}
        i = 0
        while i < len(lines):
            l = lines[i]
            if l.startswith("Package:"):
                pkg = l.split(":", 1)[1].strip()
            elif l in ("Summary:", "Description:"):
                key = l[:-1]
                j = i + 1
                while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                    m = re.match(r"^  (\S+): ?(.*)$", lines[j])
                    if m and m.group(1) == "C":
                        first = m.group(2)
                        k = j + 1
                        cont = []
                        while k < len(lines) and (lines[k].startswith("   ") or not lines[k].strip()):
                            cont.append(lines[k].strip())
                            k += 1
                        fields[key] = _yaml_scalar(first, cont)
                    j += 1
                i = j
                continue
            i += 1
        if pkg and "Description" in fields:
            text = html_to_text(fields["Description"])
            prev = out.get(pkg)
            if prev is None or len(text) > len(prev[1]):   # one package can ship several components
                out[pkg] = (norm_ws(fields.get("Summary", "")), text)
    return out


def tokens(text):
    return [t.lower() for t in WORD_RE.findall(text)]


def deb_descriptions(name):
    """(avail, longdesc): avail maps each package of the apt lists to (source, short description, section), longdesc
    each of them with a long description to (where it came from, its text): debian-packages' and debsynopsis'."""
    avail = {}
    for st in parse_stanzas(apt_available_packages()):
        pkg = st.get("Package")
        if not pkg:
            continue
        src = re.sub(r"\s*\(.*\)\s*$", "", st.get("Source", pkg)).strip() or pkg
        short = st.get("Description", "").split("\n")[0].strip()
        section = st.get("Section", "misc").split("/")[-1]
        avail.setdefault(pkg, (src, short, section))
    # long descriptions: apt's Packages lists only carry the short description
    # (long ones live in Translation-en, which is not downloaded here), so use
    # (a) dpkg's status file (installed packages, full Debian descriptions) and
    # (b) the AppStream/DEP-11 metadata of the archive (upstream descriptions).
    longdesc = {}
    with open(DPKG_STATUS, encoding="utf-8", errors="replace") as f:
        for st in parse_stanzas(f.read()):
            pkg = st.get("Package")
            if pkg in avail and "Description" in st:
                short, text = deb_long_description(st["Description"])
                if text:
                    longdesc[pkg] = ("dpkg-status", text)
    for path in sorted(glob.glob(DEP11_GLOB)):
        for pkg, (summary, text) in sorted(parse_dep11(path).items()):
            if pkg in avail and pkg not in longdesc and text:
                longdesc[pkg] = ("dep11", text)
    print(f"[{name}] {len(avail)} packages in apt lists, {len(longdesc)} with a long "
          f"description ({sum(v[0] == 'dpkg-status' for v in longdesc.values())} from dpkg status)",
          file=sys.stderr)
    return avail, longdesc


def weighted_sample(pool, weights, k, rng):
    """k items of pool drawn without replacement, each with probability proportional to its weight, with rng:
    debian-packages' and pychangelog's draw of a query's terms (weights: their idf)."""
    pool, weights, chosen = list(pool), list(weights), []
    for _ in range(k):
        x = rng.random() * sum(weights)
        acc = 0.0
        for idx, w in enumerate(weights):
            acc += w
            if x < acc:
                break
        chosen.append(pool.pop(idx))
        weights.pop(idx)
    return chosen


def build_debian():
    rng = random.Random(DEB_SEED)
    avail, longdesc = deb_descriptions("debian-packages")
    by_src = {}
    for pkg in sorted(longdesc):
        src, short, _ = avail[pkg]
        text = longdesc[pkg][1]
        nw = len(text.split())
        if nw < DEB_MIN_WORDS:
            continue
        best = by_src.get(src)
        if best is None or nw > best[0]:
            by_src[src] = (nw, pkg, short, text)
    seen, cands = set(), []
    for src in sorted(by_src):
        nw, pkg, short, text = by_src[src]
        key = norm_ws(text).lower()
        if key in seen:
            continue
        seen.add(key)
        cands.append((pkg, short, text))
    cands.sort()
    if len(cands) > DEB_MAX_DOCS:
        cands = sorted(rng.sample(cands, DEB_MAX_DOCS))
    docs = cands
    # document frequencies over title + text
    docterms = {}
    df = collections.Counter()
    for pkg, short, text in docs:
        s = set(tokens(short + " " + text))
        docterms[pkg] = s
        df.update(s)
    N = len(docs)

    def candidate_terms(pkg, text):
        namebits = set(re.split(r"[^a-z0-9]+", pkg.lower())) | {pkg.lower()}
        flat = re.sub(r"[^a-z0-9]", "", pkg.lower())
        return sorted({t for t in tokens(text)
                       if len(t) >= 4 and not t.isdigit() and t not in STOPWORDS
                       and t not in namebits and t not in flat and df[t] <= DEB_MAX_DF})

    textof = {d[0]: d[2] for d in docs}
    # noise vocabulary: rare terms of the other packages in the same Debian
    # Section (a user misremembering a term from a similar package)
    section_terms = collections.defaultdict(set)
    for pkg, short, text in docs:
        section_terms[avail[pkg][2]].update(candidate_terms(pkg, text))

    qrng = random.Random(DEB_SEED + 1)
    order = [d[0] for d in docs]
    qrng.shuffle(order)
    queries, qrels = [], []
    for pkg in order:
        if len(queries) >= DEB_N_QUERIES:
            break
        terms = candidate_terms(pkg, textof[pkg])
        k = qrng.choice(DEB_K_CHOICES)
        n_noise = min(k - 1, sum(qrng.random() < DEB_NOISE for _ in range(k)))
        k_doc = k - n_noise
        if len(terms) < k_doc:
            continue
        # document terms: without replacement, p(t) proportional to idf(t)
        chosen = weighted_sample(terms, [math.log(N / df[t]) for t in terms], k_doc, qrng)
        matches = [d for d in docterms if all(t in docterms[d] for t in chosen)]
        if pkg not in matches or len(matches) > DEB_MAX_MATCHES:
            continue
        noise_pool = sorted(t for t in section_terms[avail[pkg][2]] if t not in docterms[pkg])
        if len(noise_pool) < n_noise:
            continue
        chosen += weighted_sample(noise_pool, [math.log(N / df[t]) for t in noise_pool], n_noise, qrng)
        qrng.shuffle(chosen)
        qid = f"deb-q{len(queries):04d}"
        queries.append((qid, " ".join(chosen)))
        qrels.append((qid, pkg, 1))
    write_collection("debian-packages", docs, queries, qrels)


# ---------------------------------------------------------------------------
# 3. pydoc
# ---------------------------------------------------------------------------

PY_SEED = 20070725
PY_MAX_DOCS = 5000
PY_N_QUERIES = 200
PY_MIN_WORDS = 20
PY_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "tkinter", "turtledemo",
                "site-packages", "dist-packages", "__pycache__"}


def py_modules(stdlib):
    out = []
    for root, dirs, files in os.walk(stdlib):
        rel = os.path.relpath(root, stdlib)
        parts = [] if rel == "." else rel.split(os.sep)
        dirs[:] = sorted(d for d in dirs if d not in PY_SKIP_DIRS and not d.startswith("config-")
                         and not d.startswith("_") and d.isidentifier())
        for fn in sorted(files):
            if not fn.endswith(".py"):
                continue
            mod = fn[:-3]
            if mod == "__init__":
                modparts = parts
            elif mod.startswith("_") or not mod.isidentifier():
                continue
            else:
                modparts = parts + [mod]
            if not modparts:
                continue
            out.append((".".join(modparts), os.path.join(root, fn)))
    return sorted(out)


def split_doc(doc):
    paras = [norm_ws(p) for p in re.split(r"\n\s*\n", doc.strip())]
    paras = [p for p in paras if p]
    return paras


def py_query(summary, names):
    q = summary
    if len(q.split()) > 25:
        q = split_sentences(q)[0]
    for t in sorted(set(names), key=lambda x: (-len(x), x)):
        q = re.sub(r"(?<![\w])(?:[\w]+\.)*" + re.escape(t) + r"(?:\(\))?(?![\w])", " ", q, flags=re.I)
    q = re.sub(r"``\s*``|`\s*`|''|\"\"|\(\s*\)|\*\s*\*", " ", q)
    q = norm_ws(q)
    q = re.sub(r"\s+([.,;:!?)])", r"\1", q)
    q = re.sub(r"^[\s.,;:]+", "", q)
    return q


def build_pydoc():
    stdlib = sysconfig.get_paths()["stdlib"]
    entries = {}
    for mod, path in py_modules(stdlib):
        try:
            with open(path, "rb") as f:
                tree = ast.parse(f.read(), filename=path)
        except (SyntaxError, ValueError, OSError):
            continue

        def add(qname, node, names):
            doc = ast.get_docstring(node, clean=True)
            if not doc or qname in entries:
                return
            paras = split_doc(doc)
            if len(paras) < 2:
                return
            entries[qname] = (paras[0], " ".join(paras[1:]), names)

        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                add(f"{mod}.{node.name}", node, [node.name])
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                add(f"{mod}.{node.name}", node, [node.name])
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and not sub.name.startswith("_"):
                        add(f"{mod}.{node.name}.{sub.name}", sub, [sub.name, node.name])
    print(f"[pydoc] stdlib {stdlib}: {len(entries)} public objects with a multi-paragraph docstring",
          file=sys.stderr)
    cands, seen = [], set()
    for qname in sorted(entries):
        summary, text, names = entries[qname]
        if len(text.split()) < PY_MIN_WORDS:
            continue
        if text.lower() in seen:   # identical bodies (copied docstrings) are ambiguous
            continue
        seen.add(text.lower())
        cands.append(qname)
    rng = random.Random(PY_SEED)
    if len(cands) > PY_MAX_DOCS:
        cands = sorted(rng.sample(cands, PY_MAX_DOCS))
    docs = [(q, q, entries[q][1]) for q in cands]
    qtext = {}
    for q in cands:
        summary, text, names = entries[q]
        s = py_query(summary, names)
        if len(s.split()) >= 4:
            qtext[q] = s
    counts = collections.Counter(s.lower() for s in qtext.values())
    pool = sorted(q for q, s in qtext.items() if counts[s.lower()] == 1)
    qrng = random.Random(PY_SEED + 1)
    chosen = sorted(qrng.sample(pool, min(PY_N_QUERIES, len(pool))))
    queries, qrels = [], []
    for i, q in enumerate(chosen):
        qid = f"py-q{i:04d}"
        queries.append((qid, qtext[q]))
        qrels.append((qid, q, 1))
    write_collection("pydoc", docs, queries, qrels)


# ---------------------------------------------------------------------------
# 4. info-index
# ---------------------------------------------------------------------------

INFO_SEED = 20070726
INFO_DIR = "/usr/share/info"
INFO_N_QUERIES = 200
INFO_MAX_PER_MANUAL = 40
INFO_MAX_PER_NODE = 3
INFO_DOC_MIN_WORDS = 20
INFO_DOC_MAX_WORDS = 200
INFO_DOC_MIN_SENT_WORDS = 100   # below this, cut at a word boundary instead of a sentence
INFO_Q_MIN_WORDS, INFO_Q_MAX_WORDS = 2, 8

INFO_FILE_RE = re.compile(r"^(?P<manual>.+?)\.info(?:-(?P<part>\d+))?\.gz$")
INFO_NODE_RE = re.compile(r"^File: [^,]*,\s+Node: (?P<node>[^,\t]+?)\s*(?:,|$)")
INFO_INDEX_MARK = "\x00\x08[index\x00\x08]"
# the entry may itself contain ": " (e.g. "range: flag"); unquoted node names
# cannot contain a colon, so the entry ends at the last colon + whitespace
INFO_ENTRY_RE = re.compile(r"^\* (?P<entry>.+):\s+(?P<node>[^:\s][^:]*?)\.\s+\(line\s+\d+\)$")
INFO_UNDERLINE_RE = re.compile(r"^\s*(?:\*{2,}|={2,}|-{2,}|\.{2,})\s*$")
INFO_FOOTNOTES_RE = re.compile(r"^\s*-{3,} Footnotes -{3,}\s*$")
INFO_MARKER_RE = re.compile(r"\x00\x08\[.*?\x00\x08\]", re.S)


def info_manuals(info_dir=INFO_DIR):
    """manual -> list of its files (main file first, then parts 1, 2, ...);
    .png images, `dir` and anything else not named *.info[-N].gz are skipped."""
    out = collections.defaultdict(list)
    for fn in sorted(os.listdir(info_dir)):
        m = INFO_FILE_RE.match(fn)
        if not m:
            continue
        out[m.group("manual")].append((int(m.group("part") or 0), os.path.join(info_dir, fn)))
    return {man: [p for _, p in sorted(parts)] for man, parts in sorted(out.items())}


def info_read_nodes(paths):
    """Ordered list of (node name, body lines after the header line) of one
    manual.  Chunks between \\x1f separators that do not start with a
    'File: ..., Node: ...' header (preamble, Indirect, Tag Table, Local
    Variables) are not nodes."""
    raw = []
    for p in paths:
        with gzip.open(p, "rb") as f:
            raw.append(f.read())
    coding = "utf-8"
    for r in raw:
        m = re.search(rb"\x1f\nLocal Variables:\ncoding: ([A-Za-z0-9_.-]+)", r)
        if m:
            coding = m.group(1).decode("ascii")
    try:
        "".encode(coding)
    except LookupError:
        coding = "utf-8"
    nodes = []
    for r in raw:
        for chunk in r.decode(coding, "replace").split("\x1f"):
            lines = chunk.lstrip("\n").split("\n")
            m = INFO_NODE_RE.match(lines[0])
            if m:
                nodes.append((m.group("node").strip(), lines[1:]))
    return nodes


def info_join_entries(lines):
    """'* ...' lines with their wrapped (indented) continuation lines joined:
    list of (joined text, number of source lines)."""
    out = []
    for l in lines:
        if l.startswith("* "):
            out.append([l.strip(), 1])
        elif out and l.strip() and l[:1] in " \t":
            out[-1][0] += " " + l.strip()
            out[-1][1] += 1
    return [(norm_ws(t), k) for t, k in out]


def info_index_entries(lines):
    """(entry, target node) of an index node, in order."""
    out = []
    for t, _ in info_join_entries(lines):
        m = INFO_ENTRY_RE.match(t)
        if m:
            out.append((m.group("entry"), m.group("node")))
    return out


def info_is_index(lines):
    """An index node: carries makeinfo's index marker, or most of its
    non-blank lines belong to '* ENTRY: NODE. (line N)' entries."""
    if any(INFO_INDEX_MARK in l for l in lines):
        return True
    nonblank = sum(1 for l in lines if l.strip())
    covered = sum(k for t, k in info_join_entries(lines) if INFO_ENTRY_RE.match(t))
    return nonblank > 0 and covered >= 0.5 * nonblank


def info_strip_menus(lines):
    """Drop menu blocks: the '* Menu:' line and the paragraphs that follow it
    while they are menu items ('* Name::' at column 0, with their indented
    continuation lines) or menu comments/headings that lead to further menu
    items (e.g. '-- The Detailed Node Listing --').  The first paragraph that
    is neither ends the block; the node's text goes on from there."""
    out, i, n = [], 0, len(lines)
    while i < n:
        if lines[i].strip() != "* Menu:":
            out.append(lines[i])
            i += 1
            continue
        # split the rest into paragraphs (runs of non-blank lines)
        j = i + 1
        paras = []
        while j < n:
            while j < n and not lines[j].strip():
                j += 1
            if j >= n:
                break
            k = j
            while k < n and lines[k].strip():
                k += 1
            paras.append((j, k))
            j = k
        # menu paragraphs: starting with '* ' (or with a one-line comment
        # right above an item, as in 'Useful one-liners:' / '* Joining
        # lines::'), or a single line followed by a menu paragraph (decided
        # back to front)
        is_menu = [False] * len(paras)
        for p in range(len(paras) - 1, -1, -1):
            a, b = paras[p]
            if lines[a].startswith("* ") or (b - a >= 2 and lines[a + 1].startswith("* ")):
                is_menu[p] = True
            elif b - a == 1 and p + 1 < len(paras) and is_menu[p + 1]:
                is_menu[p] = True
        end = n
        for p, (a, b) in enumerate(paras):
            if not is_menu[p]:
                end = a
                break
        i = end
    return out


def info_clean_text(lines):
    lines = info_strip_menus(lines)
    keep = []
    for l in lines:
        if INFO_UNDERLINE_RE.match(l) or INFO_FOOTNOTES_RE.match(l):
            continue
        keep.append(INFO_MARKER_RE.sub(" ", l))
    return norm_ws(" ".join(keep))


def info_truncate(text):
    """At most INFO_DOC_MAX_WORDS words: whole sentences while they fit; when
    whole sentences would give fewer than INFO_DOC_MIN_SENT_WORDS words (long
    run-on text such as option tables), cut at a word boundary instead."""
    ws = text.split()
    if len(ws) <= INFO_DOC_MAX_WORDS:
        return text
    kept, n = [], 0
    for s in split_sentences(text):
        w = len(s.split())
        if n + w > INFO_DOC_MAX_WORDS:
            break
        kept.append(s)
        n += w
    if n < INFO_DOC_MIN_SENT_WORDS:
        return " ".join(ws[:INFO_DOC_MAX_WORDS])
    return " ".join(kept)


def info_concept_indices(index_names):
    """The index nodes whose entries become queries: those named like
    'Concept Index'; otherwise the one named plain 'Index' (the general
    index next to specialised ones such as 'Option Index'); otherwise a
    manual's only index."""
    concept = [n for n in index_names if "concept" in n.lower()]
    if concept:
        return concept
    plain = [n for n in index_names if n.lower() == "index"]
    if plain:
        return plain
    return list(index_names) if len(index_names) == 1 else []


def info_query_ok(entry):
    ws = entry.split()
    if not INFO_Q_MIN_WORDS <= len(ws) <= INFO_Q_MAX_WORDS:
        return False
    return any(re.fullmatch(r"[A-Za-z]{3,}", re.sub(r"^\W+|\W+$", "", w)) for w in ws)


def build_info_index(name="info-index", info_dir=INFO_DIR, query_prefix="info", seed=INFO_SEED):
    manuals = info_manuals(info_dir)
    docs, entries, used_index = [], [], {}
    n_nodes = n_index = n_short = 0
    for man, paths in manuals.items():
        nodes = info_read_nodes(paths)
        index_names = []
        for node, lines in nodes:
            n_nodes += 1
            if info_is_index(lines):
                n_index += 1
                index_names.append(node)
                continue
            text = info_clean_text(lines)
            if len(text.split()) < INFO_DOC_MIN_WORDS:
                n_short += 1
                continue
            docs.append((f"{man}:{node}", node, info_truncate(text)))
        chosen = info_concept_indices(index_names)
        used_index[man] = chosen
        body = dict(nodes)
        for ix in chosen:
            for entry, target in info_index_entries(body[ix]):
                entry = norm_ws(re.sub(r"\s+<\d+>$", "", entry))
                entries.append((man, entry, target))
    docs.sort()
    seen, kept = set(), []
    for did, title, text in docs:
        key = text.lower()
        if key in seen:
            continue
        seen.add(key)
        kept.append((did, title, text))
    docs = kept
    title_of = {did: title for did, title, _ in docs}
    print(f"[{name}] {len(manuals)} manuals, {n_nodes} nodes: {n_index} index nodes, "
          f"{n_short} under {INFO_DOC_MIN_WORDS} words, {len(docs)} documents after dedup",
          file=sys.stderr)
    print(f"[{name}] query indices: " + "; ".join(
        f"{m}: {', '.join(v)}" for m, v in used_index.items() if v), file=sys.stderr)
    # group entries: (manual, normalised entry) -> variants, targets in the corpus
    groups = {}
    for man, entry, target in entries:
        key = (man, entry.lower())
        g = groups.setdefault(key, {"texts": set(), "targets": set()})
        g["texts"].add(entry)
        did = f"{man}:{target}"
        if did in title_of:
            g["targets"].add(did)
    cands = []
    for (man, low), g in sorted(groups.items()):
        text = min(g["texts"])
        if not g["targets"] or not info_query_ok(text):
            continue
        if any(title_of[d].lower() == low for d in g["targets"]):
            continue
        cands.append((man, low, text, tuple(sorted(g["targets"]))))
    # the same text indexed by several manuals would be one query text with
    # different judgments: drop it
    n_man = collections.Counter(low for _, low, _, _ in cands)
    cands = [c for c in cands if n_man[c[1]] == 1]
    print(f"[{name}] {len(entries)} entries of the query indices, {len(groups)} distinct per manual, "
          f"{len(cands)} usable queries from {len({c[0] for c in cands})} manuals", file=sys.stderr)
    rng = random.Random(seed)
    order = list(cands)
    rng.shuffle(order)
    per_man, per_node, chosen = collections.Counter(), collections.Counter(), []
    for c in order:
        if len(chosen) >= INFO_N_QUERIES:
            break
        man, _, _, targets = c
        if per_man[man] >= INFO_MAX_PER_MANUAL or any(per_node[d] >= INFO_MAX_PER_NODE for d in targets):
            continue
        per_man[man] += 1
        per_node.update(targets)
        chosen.append(c)
    chosen.sort()
    queries, qrels = [], []
    for i, (man, low, text, targets) in enumerate(chosen):
        qid = f"{query_prefix}-q{i:04d}"
        queries.append((qid, text))
        qrels.extend((qid, d, 1) for d in targets)
    write_collection(name, docs, queries, qrels)
    lens = sorted(len(q.split()) for _, q in queries)
    print(f"[{name}] query length (words) min {lens[0]}, median {statistics.median(lens)}, "
          f"max {lens[-1]}; per manual: " + ", ".join(f"{m} {k}" for m, k in sorted(per_man.items())),
          file=sys.stderr)


# ---------------------------------------------------------------------------
# 5. perldiag
# ---------------------------------------------------------------------------
PERLDIAG_SEED = 20070727
PERLDIAG_GLOB = "/usr/share/perl/5.*/pod/perldiag.pod"
PERLDIAG_N_QUERIES = 300
PERLDIAG_DOC_MIN_WORDS = 12
PERLDIAG_Q_MIN_WORDS = 3
# The message's class(es) at the start of an explanation: "(W closed)", "(S experimental::const_attr)",
# "(W deprecated, syntax)", "(S utf8)(F)".
PERLDIAG_CLASS_RE = re.compile(r"^(?P<cls>(?:\([WDSFPXA](?:\s+[\w:]+(?:,?\s+[\w:]+)*)?\)\s*)+)")
# One code with no code inside (innermost first); its body may hold a "<", as in S<<-- HERE>.
POD_CODE_RE = re.compile(r"([A-Z])<((?:(?![A-Z]<)[^>])*)>")
PRINTF_RE = re.compile(r"%(?:\d+\$)?[-#0 +]*\d*(?:\.\d+)?(?:hh|h|ll|l|q|L|j|z|t|V)?[sdiuoxXcpgefFeEl]")


def pod_code_text(code, body):
    if code == "E":
        return {"gt": ">", "lt": "<", "verbar": "|", "sol": "/"}.get(body, "")
    if code == "L":
        body = body.split("|", 1)[0] if "|" in body else body
        return body.replace('"', "").replace("/", " ")
    return "" if code in "ZX" else body


POD_ESCAPE_RE = re.compile(r"E<(\w+)>")  # E<gt>, E<lt>, ...: no code inside, read before the codes around them
POD_ESCAPE_MARK_RE = re.compile(r"\x00(\w+)\x01")
POD_URL_LINK_RE = re.compile(r"L<(\w+://[^\s<>|]+)>")  # L<http://www.pm.org>


def pod_plain(text, exact=False):
    """POD formatting codes (C<...>, C<< $x->{y} >>, L<text|target>, I<...>, E<gt>, ...) to plain text.  With exact
    (perlglossary; perldiag and perlfaq were built without it) a link to a URL is its URL as written, and the escapes
    (E<...>) are marked first and spelled last, so the < or > they stand for closes no code (C<while(E<lt>E<gt>)>,
    X<E<gt>E<gt> (right shift) ...>)."""
    if exact:
        text = POD_URL_LINK_RE.sub(r"\1", POD_ESCAPE_RE.sub(lambda m: f"\x00{m.group(1)}\x01", text))
    for brackets in range(5, 1, -1):  # C<< ... >>: the body may hold a lone > (->), so these go first
        pattern = re.compile(rf"([A-Z]){'<' * brackets}\s+(.*?)\s+{'>' * brackets}", re.S)
        text = pattern.sub(lambda m: pod_code_text(m.group(1), m.group(2)), text)
    while True:  # single-bracket codes, innermost first, so C<S<use re 'strict'>> unwraps whole
        plain = POD_CODE_RE.sub(lambda m: pod_code_text(m.group(1), m.group(2)), text)
        if plain == text:
            return POD_ESCAPE_MARK_RE.sub(lambda m: pod_code_text("E", m.group(1)), text)
        text = plain


def pod_paragraphs(path, blank_runs=False, embedded=False):
    """The POD's paragraphs (blank-line separated), each as its lines; a command such as =item runs to the end
    of its paragraph, so a long message wrapped onto a second line stays whole.  With blank_runs (perlfunc, whose
    "=item opendir" follows two blank lines) a run of blank lines is one break; without it (perldiag and perlfaq were
    built so) a paragraph after two blank lines opens with an empty line.  With embedded (perlmods: a module's .pm or
    .pod) only the POD blocks are read, each from a line opening with =word up to a line =cut (perlpodspec)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if embedded:
        lines, in_pod = [], False
        for line in text.split("\n"):
            if re.match(r"=cut\b", line):
                in_pod = False
                lines.append("")  # the next block is a new paragraph
            elif in_pod or re.match(r"=[a-zA-Z]", line):
                in_pod = True
                lines.append(line)
        text = "\n".join(lines)
    breaks = r"\n(?:[ \t]*\n)+" if blank_runs else r"\n[ \t]*\n"
    return [p.split("\n") for p in re.split(breaks, text) if p.strip()]


def perldiag_entries(path, verbatim=False, section="=head1 DESCRIPTION", blank_runs=False):
    """(messages, explanation) for every top-level =item of the DESCRIPTION's list; consecutive =items
    without text between them share one explanation, as in perldiag itself.  Verbatim (indented) paragraphs are
    left out, or kept as they are with verbatim (perlglossary).  For perlfunc: section, the heading whose part is read
    (up to the next heading of its level or above), blank_runs (pod_paragraphs), and =begin ... =end blocks (a comment
    in pack's entry) skipped."""
    entries, messages, body, depth, in_desc, in_begin = [], [], [], 0, False, False

    def flush():
        if messages and body:
            entries.append((list(messages), "\n".join(body)))
        messages.clear()
        body.clear()

    for lines in pod_paragraphs(path, blank_runs):
        first = lines[0]
        if first.startswith("=head"):
            if first.strip() == section:
                in_desc = True
            elif first[:6] <= section[:6]:  # "=head1" ends a =head2's part, "=head2" does not end a =head1's
                in_desc = False
            continue
        if not in_desc:
            continue
        if first.startswith(("=begin", "=end")):
            in_begin = first.startswith("=begin")
            continue
        if in_begin:
            continue
        if first.startswith("=over"):
            depth += 1
        elif first.startswith("=back"):
            depth -= 1
            if depth == 0:
                flush()
        elif depth == 1 and first.startswith("=item "):
            if body:
                flush()
            messages.append(norm_ws(" ".join(lines)[len("=item "):]))
        elif depth >= 1 and messages and not first.startswith(("=",) if verbatim else ("=", " ", "\t")):
            body.extend(lines)  # prose only: nested list commands and verbatim (indented) examples are left out
    flush()
    return entries


def perldiag_pod():
    """The installed perldiag.pod of the newest Perl (version order, not text order: 5.40 after 5.8)."""
    paths = {os.path.realpath(p) for p in glob.glob(PERLDIAG_GLOB)}
    if not paths:
        raise SystemExit(f"[perldiag] no {PERLDIAG_GLOB} (Debian: perl-modules-5.xx)")
    version = lambda p: tuple(int(n) for n in re.findall(r"\d+", p.split("/perl/")[1].split("/")[0]))  # noqa: E731
    return max(paths, key=version)


def perldiag_query(message):
    q = pod_plain(message)
    q = PRINTF_RE.sub(" ", q)
    q = re.sub(r"([\"'])\s*\1|\{\s*\}|\[\s*\]|\(\s*\)", " ", q)  # what held only a placeholder
    return norm_ws(q)


def build_perldiag():
    path = perldiag_pod()
    docs, pool, seen = [], [], set()
    for number, (messages, body) in enumerate(perldiag_entries(path)):
        text = norm_ws(pod_plain(body))
        cls = PERLDIAG_CLASS_RE.match(text)
        title = norm_ws(cls.group("cls")) if cls else ""
        text = text[cls.end():] if cls else text
        if len(text.split()) < PERLDIAG_DOC_MIN_WORDS or text.lower() in seen:
            continue
        seen.add(text.lower())
        doc_id = f"perldiag-{number:04d}"
        docs.append((doc_id, title, text))
        for message in messages:
            query = perldiag_query(message)
            if len(WORD_RE.findall(query)) >= PERLDIAG_Q_MIN_WORDS:
                pool.append((doc_id, query))
    counts = collections.Counter(q.lower() for _, q in pool)
    pool = [(d, q) for d, q in pool if counts[q.lower()] == 1]  # a message text shared by entries is ambiguous
    by_doc = collections.defaultdict(list)
    for d, q in pool:
        by_doc[d].append(q)
    rng = random.Random(PERLDIAG_SEED)
    one_per_doc = [(d, rng.choice(sorted(qs))) for d, qs in sorted(by_doc.items())]
    chosen = sorted(random.Random(PERLDIAG_SEED + 1).sample(one_per_doc, min(PERLDIAG_N_QUERIES, len(one_per_doc))))
    queries, qrels = [], []
    for i, (d, q) in enumerate(chosen):
        queries.append((f"pd-q{i:04d}", q))
        qrels.append((f"pd-q{i:04d}", d, 1))
    print(f"[perldiag] {path}: {len(docs)} explanations, {len(one_per_doc)} with a message query of "
          f"{PERLDIAG_Q_MIN_WORDS}+ words", file=sys.stderr)
    write_collection("perldiag", docs, queries, qrels)


# info-extra: the same build over the info manuals of Debian packages not installed here (round 4's held-out set,
# README.md says how to fetch them); the build stops with a message when that folder is missing.
INFO_EXTRA_DIR = "/tmp/info-extra/usr/share/info"
INFO_EXTRA_SEED = 20070728


def build_info_extra():
    if not os.path.isdir(INFO_EXTRA_DIR):
        sys.exit(f"[info-extra] no {INFO_EXTRA_DIR}: README.md says how to fetch its packages "
                 "(or build --only another)")
    build_info_index("info-extra", INFO_EXTRA_DIR, "infx", INFO_EXTRA_SEED)


# ---------------------------------------------------------------------------
# 7. perlfaq
# ---------------------------------------------------------------------------
# The Perl FAQ (perlfaq1-9.pod of Debian's perl-doc, not installed here: round 5's held-out set, README.md
# says how to fetch it); the build stops with a message when that folder is missing.  Each =head2 is a
# question; the query is the question, the document its answer (the question is not in the document).
PERLFAQ_DIR = "/tmp/perlfaq/usr/share/perl/5.36.0/pod"
PERLFAQ_SEED = 20070729
PERLFAQ_N_QUERIES = 200
PERLFAQ_DOC_MIN_WORDS = 20
PERLFAQ_Q_MIN_WORDS = 3


def perlfaq_entries(path):
    """(number, question, answer) for every =head2 of the pod, numbered by position in the file; the answer
    runs to the next =head1 or =head2.  Prose and =item texts are turned into plain text; verbatim (indented)
    code examples are kept as they are (POD codes are not interpreted there); =over, =back and other commands
    are left out."""
    entries, question, body = [], None, []

    def flush():
        if question is not None:
            entries.append((len(entries), question, norm_ws(" ".join(body))))
        body.clear()

    for lines in pod_paragraphs(path):
        para = "\n".join(lines).strip("\n")  # a paragraph after several blank lines starts with one
        if para.startswith(("=head1", "=head2")):
            flush()
            question = norm_ws(pod_plain(para[len("=head2"):])) if para.startswith("=head2") else None
        elif question is None:
            continue
        elif para.startswith("=") and not para.startswith("=item"):
            continue
        else:
            body.append(pod_body_text(para))
    flush()
    return entries


def pod_body_text(para, plain=pod_plain):
    """The text of a paragraph of a POD's body: an =item's without its bullet, a verbatim (indented) one as it is,
    prose with its codes made plain (plain): perlfaq_entries' and perlmods'."""
    if para.startswith("=item"):
        return re.sub(r"^\*\s*", "", norm_ws(plain(para[len("=item"):])))  # no bullet
    if para.startswith((" ", "\t")):
        return para
    return plain(para)


def unambiguous_questions(pool):
    """The (doc_id, question) pairs of ``pool`` whose question no other pair asks too (case-insensitive: a
    question asked twice is ambiguous), and how often each dropped question (lower-cased) was asked."""
    counts = collections.Counter(q.lower() for _, q in pool)
    return [(d, q) for d, q in pool if counts[q.lower()] == 1], {q: c for q, c in counts.items() if c > 1}


def sampled_questions(pool, seed, n_queries, query_prefix):
    """An FAQ collection's queries and qrels: a seeded sample of min(n_queries, len(pool)) of ``pool``'s
    (doc_id, question) pairs, in id order, each question judged against its own answer."""
    chosen = sorted(random.Random(seed).sample(pool, min(n_queries, len(pool))))
    queries = [(f"{query_prefix}-q{i:04d}", q) for i, (_, q) in enumerate(chosen)]
    qrels = [(f"{query_prefix}-q{i:04d}", d, 1) for i, (d, _) in enumerate(chosen)]
    return queries, qrels


def kept_texts(name, items, min_words, what, say_short=True):
    """The items (label, heading, text, key), in order, whose text has min_words+ (whitespace-separated) words and
    is no exact duplicate (case-insensitive) of one kept before; each short one is said on stderr (its text called
    ``what``) unless say_short is false, and the numbers of short and of duplicate texts are returned with them."""
    kept, seen, n_short, n_dup = [], set(), 0, 0
    for label, heading, text, key in items:
        if len(text.split()) < min_words:
            n_short += 1
            if say_short:
                print(f"[{name}] skipped ({what} under {min_words} words): {label}: {heading!r}", file=sys.stderr)
        elif text.lower() in seen:
            n_dup += 1
        else:
            seen.add(text.lower())
            kept.append((label, heading, text, key))
    return kept, n_short, n_dup


def length_summary(queries, docs, what):
    """The lengths in (whitespace-separated) words of a collection's queries and documents (``what``), for stderr."""
    lens = sorted(len(q.split()) for _, q in queries)
    dlens = sorted(len(t.split()) for _, _, t in docs)
    return (f"query length (words) min {lens[0]}, median {statistics.median(lens)}, max {lens[-1]}; {what} length "
            f"min {dlens[0]}, median {statistics.median(dlens)}, max {dlens[-1]}")


def build_perlfaq():
    if not os.path.isdir(PERLFAQ_DIR):
        sys.exit(f"[perlfaq] no {PERLFAQ_DIR}: README.md says how to fetch perl-doc (or build --only another)")
    docs, pool, seen = [], [], set()
    n_items = n_short = 0
    for n in range(1, 10):
        path = os.path.join(PERLFAQ_DIR, f"perlfaq{n}.pod")
        for number, question, answer in perlfaq_entries(path):
            n_items += 1
            if len(answer.split()) < PERLFAQ_DOC_MIN_WORDS:
                n_short += 1
                continue
            if answer.lower() in seen:
                continue
            seen.add(answer.lower())
            doc_id = f"perlfaq{n}-{number:04d}"
            docs.append((doc_id, "", answer))
            if len(WORD_RE.findall(question)) >= PERLFAQ_Q_MIN_WORDS:
                pool.append((doc_id, question))
    pool, _ = unambiguous_questions(pool)
    queries, qrels = sampled_questions(pool, PERLFAQ_SEED, PERLFAQ_N_QUERIES, "pf")
    print(f"[perlfaq] {PERLFAQ_DIR}: {n_items} questions, {n_short} with an answer under {PERLFAQ_DOC_MIN_WORDS} "
          f"words, {len(docs)} answers after dedup, {len(pool)} with a question of {PERLFAQ_Q_MIN_WORDS}+ words",
          file=sys.stderr)
    write_collection("perlfaq", docs, queries, qrels)
    print("[perlfaq] " + length_summary(queries, docs, "answer"), file=sys.stderr)


# ---------------------------------------------------------------------------
# 8. pyfaq
# ---------------------------------------------------------------------------
# The Python FAQ (faq/*.html of Debian's python3.11-doc, not installed here: round 6's held-out set, README.md
# says how to fetch it); the build stops with a message when that folder is missing.  Each section with no
# subsection is a question; the query is the question, the document its answer, as for perlfaq.  The rendered
# HTML is read rather than the reST sources beside it: there Sphinx has resolved the cross-references
# (:ref:`tutorial-index` is "The Python Tutorial") and left out the hidden test set-up code.
PYFAQ_DIR = "/tmp/pyfaq/usr/share/doc/python3.11/html/faq"
PYFAQ_SEED = 20070730
PYFAQ_N_QUERIES = 200
PYFAQ_DOC_MIN_WORDS = 20
PYFAQ_Q_MIN_WORDS = 3
# Elements whose start and end separate text; other tags (code, span, a, em, ...) run inline.
PYFAQ_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
PYFAQ_BLOCK_TAGS = PYFAQ_HEADINGS | frozenset("p li pre div dt dd tr td th blockquote br dl ul ol table caption"
                                             .split())
# The FAQ's sources are pure ASCII: these characters are Sphinx's smartquotes ('qDe') and its :menuselection: arrow
# ("Start --> Programs"), mapped back so that queries and documents hold what the authors typed (and a user would).
PYFAQ_UNSMART = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                               "\u2013": "--", "\u2014": "---", "\u2026": "...", "\u2023": "-->"})


class PyfaqPage(html.parser.HTMLParser):
    """The <section>s of one Sphinx page: for each its heading, its own text (that of its subsections not
    included) and whether it has subsections.  The permalink marks (headerlink) and the page's table of
    contents (nav) are left out."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections, self.open, self.in_heading, self.skip = [], [], False, None

    def handle_starttag(self, tag, attrs):
        if self.skip:
            return
        if tag == "nav" or (tag == "a" and "headerlink" in (dict(attrs).get("class") or "").split()):
            self.skip = tag
        elif tag == "section":
            if self.open:
                self.open[-1]["has_sub"] = True
            self.sections.append({"title": [], "text": [], "has_sub": False, "depth": len(self.open)})
            self.open.append(self.sections[-1])
        elif self.open and tag in PYFAQ_BLOCK_TAGS:
            self.in_heading = self.in_heading or tag in PYFAQ_HEADINGS
            self.open[-1]["text"].append(" ")

    def handle_endtag(self, tag):
        if self.skip:
            self.skip = None if tag == self.skip else self.skip
        elif tag == "section" and self.open:
            self.open.pop()
        elif self.open and tag in PYFAQ_BLOCK_TAGS:
            self.in_heading = self.in_heading and tag not in PYFAQ_HEADINGS
            self.open[-1]["text"].append(" ")

    def handle_data(self, data):
        if self.open and not self.skip:
            self.open[-1]["title" if self.in_heading else "text"].append(data)


def pyfaq_entries(path, page_class=PyfaqPage):
    """(number, question, answer) for every section of the page below its title that has no subsection,
    numbered by position among them (from 0).  Code examples stay, as text; whitespace is collapsed."""
    page = page_class()
    with open(path, encoding="utf-8") as f:
        page.feed(f.read())
    page.close()
    items = [s for s in page.sections if s["depth"] > 0 and not s["has_sub"]]
    plain = lambda parts: norm_ws("".join(parts).translate(PYFAQ_UNSMART))  # noqa: E731
    return [(i, plain(s["title"]), plain(s["text"])) for i, s in enumerate(items)]


def pyfaq_pages():
    """The FAQ's pages in name order (index.html only lists them)."""
    return [p for p in sorted(glob.glob(os.path.join(PYFAQ_DIR, "*.html"))) if os.path.basename(p) != "index.html"]


def build_pyfaq():
    if not os.path.isdir(PYFAQ_DIR):
        sys.exit(f"[pyfaq] no {PYFAQ_DIR}: README.md says how to fetch python3.11-doc (or build --only another)")
    pages = [(os.path.basename(p)[:-len(".html")], pyfaq_entries(p)) for p in pyfaq_pages()]
    build_faq("pyfaq", "pyf", PYFAQ_DIR, pages, PYFAQ_SEED, PYFAQ_N_QUERIES, PYFAQ_DOC_MIN_WORDS, PYFAQ_Q_MIN_WORDS)


def build_faq(name, query_prefix, source, pages, seed, n_queries, doc_min_words, q_min_words, unit="page",
              numbered=True):
    """pyfaq's (and debfaq's and efaq's) collection from pages: [(page, [(number, question, answer), ...]), ...].  One
    document `NAME-PAGE-NNNN` per answer of doc_min_words+ words (exact duplicates dropped), the question not in
    it; the queries a seeded sample of min(n_queries, candidates) of the questions of q_min_words+ words that
    no other kept item asks too (case-insensitive), each judged against its own answer.  For pgreference: numbered
    false, one item a page, its document `NAME-PAGE` (and no counts per page on stderr)."""
    items = [(page, question, answer, number) for page, entries in pages for number, question, answer in entries]
    kept, n_short, n_dup = kept_texts(name, items, doc_min_words, "answer")
    n_items = len(items)
    docs, pool, page_of = [], [], {}
    for page, question, answer, number in kept:
        doc_id = f"{name}-{page}-{number:04d}" if numbered else f"{name}-{page}"
        docs.append((doc_id, "", answer))
        page_of[doc_id] = page
        if len(WORD_RE.findall(question)) >= q_min_words:
            pool.append((doc_id, question))
    pool, asked_twice = unambiguous_questions(pool)
    for q in sorted(asked_twice):
        print(f"[{name}] question asked {asked_twice[q]} times, dropped: {q!r}", file=sys.stderr)
    queries, qrels = sampled_questions(pool, seed, n_queries, query_prefix)
    print(f"[{name}] {source}: {n_items} questions, {n_short} with an answer under {doc_min_words} "
          f"words, {n_dup} duplicate answers, {len(docs)} answers, {len(pool)} with an unambiguous question of "
          f"{q_min_words}+ words", file=sys.stderr)
    write_collection(name, docs, queries, qrels)
    if not numbered:
        print(f"[{name}] " + length_summary(queries, docs, "answer"), file=sys.stderr)
        return
    per_page = collections.Counter(page_of[d] for _, d, _ in qrels)
    print(f"[{name}] " + length_summary(queries, docs, "answer") + f"; documents per {unit} "
          + ", ".join(f"{p} {n}" for p, n in collections.Counter(page_of.values()).most_common())
          + f"; queries per {unit} " + ", ".join(f"{p} {n}" for p, n in per_page.most_common()), file=sys.stderr)


# ---------------------------------------------------------------------------
# 9. debfaq
# ---------------------------------------------------------------------------
# The Debian FAQ (the English chapters, *.en.html, of Debian's debian-faq, not installed here: round 6's second
# held-out set, README.md says how to fetch it); the build stops with a message when that folder is missing.
# Built as pyfaq, from DocBook's HTML rather than Sphinx's: a section with no subsection whose heading is a
# question is an item; the query is the question (its section number stripped), the document its answer.
DEBFAQ_DIR = "/tmp/debfaq/usr/share/doc/debian/FAQ"
DEBFAQ_SEED = 20070731
DEBFAQ_N_QUERIES = 200
DEBFAQ_DOC_MIN_WORDS = 20
DEBFAQ_Q_MIN_WORDS = 3
DEBFAQ_NUMBER_RE = re.compile(r"^\d+(?:\.\d+)*\.\s+")  # "3.1.10. " before a heading


class DebfaqPage(PyfaqPage):
    """PyfaqPage for DocBook XSL's HTML: a <div class="section"> (the chapter's <div class="chapter"> at the
    top) is a section; the chapter's table of contents (<div class="toc">, no <div> inside) is left out; a
    footnote, which DocBook gathers at the chapter's end, goes, with its [N] mark, to the end of the section
    that cites it."""

    def __init__(self):
        super().__init__()
        self.divs, self.cites = [], {}  # the open <div>s: "section", "note" or None; footnote id -> section

    def handle_starttag(self, tag, attrs):
        if self.skip:
            return
        attrs_d = dict(attrs)
        cls = (attrs_d.get("class") or "").split()
        if tag == "div" and "toc" in cls:
            self.skip = "div"
            return
        if tag == "a" and "footnote" in cls and self.open:
            self.cites[attrs_d.get("id")] = self.open[-1]
        if tag == "div":
            note_of = self.cites.get((attrs_d.get("id") or "")[len("ftn."):]) if "footnote" in cls else None
            if "section" in cls or "chapter" in cls:
                self.divs.append("section")
                tag = "section"
            elif note_of is not None:
                self.divs.append("note")
                self.open.append(note_of)
            else:
                self.divs.append(None)
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "div" and not self.skip and self.divs:
            kind = self.divs.pop()
            if kind == "note":
                super().handle_endtag(tag)
                self.open.pop()
                return
            if kind == "section":
                tag = "section"
        super().handle_endtag(tag)


def faq_page_entries(path, page, number_re):
    """(number, question, answer) for every FAQ item of a page, numbered by position among them (from 0): the
    sections with no subsection whose heading holds a question mark, as pyfaq_entries reads them with the page
    class ``page`` (DebfaqPage, HeadingFaqPage), number_re stripped from the heading; and the headings of the
    other sections with no subsection (topics such as `dpkg` or `Authors`, which are not questions)."""
    leaves = [(number_re.sub("", q), a) for _, q, a in pyfaq_entries(path, page)]
    return [(i, q, a) for i, (q, a) in enumerate((q, a) for q, a in leaves if "?" in q)], \
        [q for q, _ in leaves if "?" not in q]


def faq_page_chapters(name, pages, page, number_re):
    """[(chapter, entries)] of faq_page_entries for ``pages``, (chapter, path) in order; each topic skipped is
    said on stderr."""
    chapters = []
    for chapter, path in pages:
        entries, topics = faq_page_entries(path, page, number_re)
        for topic in topics:
            print(f"[{name}] skipped (heading not a question): {chapter}: {topic!r}", file=sys.stderr)
        chapters.append((chapter, entries))
    return chapters


def debfaq_chapters():
    """The English chapters in name order (index.en.html is the title page and table of contents; the *.html
    beside them are links to them)."""
    return [p for p in sorted(glob.glob(os.path.join(DEBFAQ_DIR, "*.en.html")))
            if os.path.basename(p) != "index.en.html"]


def build_debfaq():
    if not os.path.isdir(DEBFAQ_DIR):
        sys.exit(f"[debfaq] no {DEBFAQ_DIR}: README.md says how to fetch debian-faq (or build --only another)")
    pages = [(os.path.basename(path)[:-len(".en.html")], path) for path in debfaq_chapters()]
    chapters = faq_page_chapters("debfaq", pages, DebfaqPage, DEBFAQ_NUMBER_RE)
    build_faq("debfaq", "dbf", DEBFAQ_DIR, chapters, DEBFAQ_SEED, DEBFAQ_N_QUERIES, DEBFAQ_DOC_MIN_WORDS,
              DEBFAQ_Q_MIN_WORDS, unit="chapter")


# ---------------------------------------------------------------------------
# 10. efaq
# ---------------------------------------------------------------------------
# The GNU Emacs FAQ (the Info manual efaq.info.gz of Debian's emacs-common, not installed here: round 6's third
# held-out set, README.md says how to fetch it); the build stops with a message when that file is missing.
# Built as debfaq, from Info rather than HTML (read with info-index's parser): a node with no subsection (no
# menu) whose section title is a question is an item; the query is the title (its section number stripped), the
# document the node's text without it.
EFAQ_DIR = "/tmp/efaq/usr/share/info/emacs"
EFAQ_SEED = 20070732
EFAQ_N_QUERIES = 200
EFAQ_DOC_MIN_WORDS = 20
EFAQ_Q_MIN_WORDS = 3
EFAQ_TITLE_RE = re.compile(r"^(?P<number>\d+(?:\.\d+)*)\s+(?P<title>\S.*)$")  # "5.12 How do I ...?"
EFAQ_BULLET_RE = re.compile(r"^(\s*)[\u2022\u2212] ")  # makeinfo's list marks (@bullet, @minus) at a line's start


def info_faq_entries(path, bullet_re=EFAQ_BULLET_RE):
    """(chapter, [(number, question, answer), ...]) for every chapter of the manual that holds FAQ items, numbered
    by position among the chapter's items (from 0), and (chapter, heading) for the other nodes with no subsection
    (headings that are not questions, such as `Spell-checkers`).  A node with no subsection is one with no menu
    (not `Top`, a chapter or the index); its heading is its section title (the first line, above its underline),
    the section number stripped, and an item's answer is the rest of its text as info-index cleans it, each list
    mark that bullet_re finds (its group 1, the indent, is kept) dropped: for efaq a bullet or minus at a line's
    start, for rfaq an indented `*`.  makeinfo's typographic quotes and dashes (the manual's Texinfo source is
    ASCII) are mapped back by pyfaq's table."""
    items, topics = collections.defaultdict(list), []
    for _, lines in info_read_nodes([path]):
        if info_is_index(lines) or any(l.strip() == "* Menu:" for l in lines):
            continue
        k = next((i for i, l in enumerate(lines) if l.strip()), len(lines))
        m = EFAQ_TITLE_RE.match(lines[k].strip()) if k + 1 < len(lines) else None
        if not m or not INFO_UNDERLINE_RE.match(lines[k + 1]):
            continue
        chapter = f"{int(m.group('number').split('.')[0]):02d}"
        heading = norm_ws(m.group("title")).translate(PYFAQ_UNSMART)
        if "?" not in heading:
            topics.append((chapter, heading))
            continue
        answer = info_clean_text([bullet_re.sub(r"\1", l) for l in lines[k + 2:]]).translate(PYFAQ_UNSMART)
        items[chapter].append((len(items[chapter]), heading, answer))
    return sorted(items.items()), topics


def info_faq_chapters(name, path, package, bullet_re):
    """info_faq_entries' chapters of the Info FAQ ``path`` (efaq, rfaq); the build stops with a message when that file
    is missing (README.md says how to fetch ``package``), and each topic skipped is said on stderr."""
    if not os.path.isfile(path):
        sys.exit(f"[{name}] no {path}: README.md says how to fetch {package} (or build --only another)")
    chapters, topics = info_faq_entries(path, bullet_re)
    for chapter, topic in topics:
        print(f"[{name}] skipped (heading not a question): {chapter}: {topic!r}", file=sys.stderr)
    return chapters


def build_efaq():
    path = os.path.join(EFAQ_DIR, "efaq.info.gz")
    chapters = info_faq_chapters("efaq", path, "emacs-common", EFAQ_BULLET_RE)
    build_faq("efaq", "efq", path, chapters, EFAQ_SEED, EFAQ_N_QUERIES, EFAQ_DOC_MIN_WORDS, EFAQ_Q_MIN_WORDS,
              unit="chapter")


# ---------------------------------------------------------------------------
# 11. zshfaq
# ---------------------------------------------------------------------------
# The Z-Shell FAQ (the chapters FAQ01-06.html of Debian's zsh-doc, not installed here: a held-out set, README.md
# says how to fetch it); the build stops with a message when that folder is missing.  Built as debfaq, from
# Yodl's HTML, whose sections are not elements: an <h1> (a chapter) or an <h2> (a section) runs to the next
# heading of its level or above.  A section whose heading is a question is an item; the query is the question
# (its section number stripped), the document its answer.
ZSHFAQ_DIR = "/tmp/zshfaq/usr/share/doc/zsh-common/html"
ZSHFAQ_SEED = 20070733
ZSHFAQ_N_QUERIES = 200
ZSHFAQ_DOC_MIN_WORDS = 20
ZSHFAQ_Q_MIN_WORDS = 3
ZSHFAQ_NUMBER_RE = re.compile(r"^\d+\.\d+:\s+")  # "3.12: " before a heading


class HeadingFaqPage(PyfaqPage):
    """PyfaqPage for HTML whose sections are not elements but headings: an <h1> opens a top section (the page's
    title or a chapter) and an <h2> a section below it, each running to the next <h1> or <h2>, or to an <hr>
    (which closes every section: the pages' navigation and footers lie after one).  Lower headings (<h3>, inside
    an answer) stay in the text as blocks."""

    LEVELS = {"h1": 0, "h2": 1}

    def handle_starttag(self, tag, attrs):
        if not self.skip:
            if tag == "hr":
                while self.open:
                    super().handle_endtag("section")
                return
            level = self.LEVELS.get(tag)
            if level is not None:
                while len(self.open) > level:
                    super().handle_endtag("section")
                super().handle_starttag("section", attrs)
            elif tag in PYFAQ_HEADINGS:
                tag = "p"
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag in PYFAQ_HEADINGS and tag not in self.LEVELS:
            tag = "p"
        super().handle_endtag(tag)


def build_zshfaq():
    if not os.path.isdir(ZSHFAQ_DIR):
        sys.exit(f"[zshfaq] no {ZSHFAQ_DIR}: README.md says how to fetch zsh-doc (or build --only another)")
    # FAQ.html is the FAQ's table of contents; The-Zsh-FAQ.html, a page of the zsh manual, points to it.
    pages = [(os.path.basename(path)[len("FAQ"):-len(".html")], path)
             for path in sorted(glob.glob(os.path.join(ZSHFAQ_DIR, "FAQ[0-9][0-9].html")))]
    chapters = faq_page_chapters("zshfaq", pages, HeadingFaqPage, ZSHFAQ_NUMBER_RE)
    build_faq("zshfaq", "zsf", ZSHFAQ_DIR, chapters, ZSHFAQ_SEED, ZSHFAQ_N_QUERIES, ZSHFAQ_DOC_MIN_WORDS,
              ZSHFAQ_Q_MIN_WORDS, unit="chapter")


# ---------------------------------------------------------------------------
# 12. fetchfaq
# ---------------------------------------------------------------------------
# The Fetchmail FAQ (fetchmail-FAQ.html of Debian's fetchmail, not installed here: a held-out set, README.md says
# how to fetch it); the build stops with a message when that file is missing.  Built as zshfaq (the page's
# <h1>s are its chapters, its <h2>s their sections): a section labelled with its chapter's letter and its number
# ("G10. ") whose heading is a question is an item; the query is the question (the label stripped), the document
# its answer.
FETCHFAQ_DIR = "/tmp/fetchfaq/usr/share/doc/fetchmail"
FETCHFAQ_SEED = 20070734
FETCHFAQ_N_QUERIES = 200
FETCHFAQ_DOC_MIN_WORDS = 20
FETCHFAQ_Q_MIN_WORDS = 3
FETCHFAQ_LABEL_RE = re.compile(r"^(?P<label>(?P<chapter>[A-Z])\d+)\.\s+")  # "G10. " before a heading


def fetchfaq_entries(path):
    """(chapter, [(number, question, answer), ...]) for every chapter (a letter) of the page that holds FAQ items,
    numbered by position among the chapter's items (from 0), and (label, heading) for the other labelled sections
    (headings that are not questions, such as `B4. I get build failures in the intl directory.`).  The sections
    are HeadingFaqPage's with no subsection, read as pyfaq_entries reads a page; those with no label (the chapter
    headings of the page's `Detailed Contents`) are not FAQ entries."""
    items, topics = collections.defaultdict(list), []
    for _, heading, answer in pyfaq_entries(path, HeadingFaqPage):
        m = FETCHFAQ_LABEL_RE.match(heading)
        if not m:
            continue
        question = heading[m.end():]
        if "?" not in question:
            topics.append((m.group("label"), question))
            continue
        chapter = items[m.group("chapter")]
        chapter.append((len(chapter), question, answer))
    return sorted(items.items()), topics


def build_fetchfaq():
    path = os.path.join(FETCHFAQ_DIR, "fetchmail-FAQ.html")
    if not os.path.isfile(path):
        sys.exit(f"[fetchfaq] no {path}: README.md says how to fetch fetchmail (or build --only another)")
    chapters, topics = fetchfaq_entries(path)
    for label, topic in topics:
        print(f"[fetchfaq] skipped (heading not a question): {label}: {topic!r}", file=sys.stderr)
    build_faq("fetchfaq", "ftf", path, chapters, FETCHFAQ_SEED, FETCHFAQ_N_QUERIES, FETCHFAQ_DOC_MIN_WORDS,
              FETCHFAQ_Q_MIN_WORDS, unit="chapter")


# ---------------------------------------------------------------------------
# 13. rfaq
# ---------------------------------------------------------------------------
# The R FAQ (the Info manual R-FAQ.info.gz of Debian's r-doc-info, not installed here: round 8's held-out set,
# README.md says how to fetch it); the build stops with a message when that file is missing.  Built as efaq, with
# efaq's parser: a node with no subsection (no menu) whose section title is a question is an item; the query is
# the title (its section number stripped), the document the node's text without it.  texi2any wrote this manual's
# list marks as ASCII: an indented `*` (a menu item, which no item has, is not indented).
RFAQ_DIR = "/tmp/rfaq/usr/share/info"
RFAQ_SEED = 20070735
RFAQ_N_QUERIES = 200
RFAQ_DOC_MIN_WORDS = 20
RFAQ_Q_MIN_WORDS = 3
RFAQ_BULLET_RE = re.compile(r"^(\s+)\* ")  # "   * " (@bullet) at a line's start


def build_rfaq():
    path = os.path.join(RFAQ_DIR, "R-FAQ.info.gz")
    chapters = info_faq_chapters("rfaq", path, "r-doc-info", RFAQ_BULLET_RE)
    build_faq("rfaq", "rfq", path, chapters, RFAQ_SEED, RFAQ_N_QUERIES, RFAQ_DOC_MIN_WORDS, RFAQ_Q_MIN_WORDS,
              unit="chapter")


# ---------------------------------------------------------------------------
# 14. policy
# ---------------------------------------------------------------------------
# The Debian Policy Manual (the Sphinx HTML pages policy.html/ch-*.html and ap-*.html of Debian's debian-policy, not
# installed here: round 9's held-out set, README.md says how to fetch it); the build stops with a message when that
# folder is missing.  Not an FAQ: every numbered section of the manual and of its appendices (the upgrading checklist,
# upgrading-checklist.html, is not read) is a document, its own text without its heading (its subsections' text not
# included, footnotes dropped), titled with its chapter's name; the query is a section's heading (its number stripped),
# judged against that section.  The HTML is read rather than policy.txt.gz: Sphinx's text writer wraps lines after
# hyphens and before slashes inside words ("Changed-" / "By", "/usr/share" / "/common-licenses/GPL"), which cannot be
# undone reliably, and quotes literals ("debian/rules"), which the HTML marks as <code> instead.
POLICY_DIR = "/tmp/policy/usr/share/doc/debian-policy/policy.html"
POLICY_SEED = 20070736
POLICY_N_QUERIES = 120
POLICY_DOC_MIN_WORDS = 30
POLICY_Q_MIN_WORDS = 2
POLICY_NUMBER_RE = re.compile(r"^(?P<number>\d+(?:\.\d+)*)\.\s+")  # "4.9.1. " before a heading


class PolicyPage(PyfaqPage):
    """PyfaqPage for the Policy Manual's Sphinx (docutils 0.17) HTML, and the Developer's Reference's (docutils 0.19):
    footnotes are dropped, both the marks that cite them (<a class="footnote-reference">) and the lists that hold them
    (0.17's <dl class="footnote">, which may hold other <dl>s; 0.19's <aside class="footnote-list">, which holds an
    <aside> a footnote), and a figure's caption is a block of its own."""

    def __init__(self):
        super().__init__()
        self.notes, self.note_tag = 0, None  # how many <dl>s (or <aside>s) are open inside a footnote list dropped

    def handle_starttag(self, tag, attrs):
        if self.notes:
            self.notes += tag == self.note_tag
            return
        cls = (dict(attrs).get("class") or "").split()
        if not self.skip and ((tag == "dl" and "footnote" in cls) or (tag == "aside" and "footnote-list" in cls)):
            self.notes, self.note_tag, self.skip = 1, tag, "footnote list"
            return
        if not self.skip and tag == "a" and "footnote-reference" in cls:
            self.skip = "a"
            return
        super().handle_starttag("p" if tag in ("figure", "figcaption") else tag, attrs)

    def handle_endtag(self, tag):
        if self.notes:
            self.notes -= tag == self.note_tag
            self.skip = self.skip if self.notes else None
            return
        super().handle_endtag("p" if tag in ("figure", "figcaption") else tag)


def policy_sections(name, path, page_class=PolicyPage, number_re=POLICY_NUMBER_RE):
    """(number, heading, text, depth) for every section of the page (read with page_class), in order: its number and
    heading from its heading (the section number, number_re, stripped), its own text (not its subsections'); depth 0
    is the chapter.  number_re None (pyhowto: headings with no number): each section numbered by its place, from 00."""
    page = page_class()
    with open(path, encoding="utf-8") as f:
        page.feed(f.read())
    page.close()
    plain = lambda parts: norm_ws("".join(parts).translate(PYFAQ_UNSMART))  # noqa: E731
    out = []
    for i, s in enumerate(page.sections):
        if number_re is None:
            out.append((f"{i:02d}", plain(s["title"]), plain(s["text"]), s["depth"]))
            continue
        m = number_re.match(plain(s["title"]))
        if not m:
            sys.exit(f"[{name}] {path}: a section without a number: {plain(s['title'])!r}")
        out.append((m.group("number"), plain(s["title"])[m.end():], plain(s["text"]), s["depth"]))
    return out


def chapter_order(number):
    """A chapter's place: numbers in order, then letters (DocBook's appendices, A, B, ...)."""
    return (0, int(number), "") if number.isdigit() else (1, 0, number)


def manual_chapters(name, kinds, page_class=PolicyPage, number_re=POLICY_NUMBER_RE):
    """[(kind, chapter number, chapter name, sections)] for a manual's chapters from kinds, [(kind, pages)]: the
    chapters (kind "") and the appendices (kind "ap"), one a page, each kind in number order (numbers before letters,
    as DocBook numbers its appendices); sections as policy_sections gives them."""
    chapters = []
    for kind, paths in kinds:
        pages = [policy_sections(name, p, page_class, number_re) for p in paths]
        for sections in sorted(pages, key=lambda secs: chapter_order(secs[0][0])):
            number, chapter, _, depth = sections[0]
            if depth != 0 or any(d == 0 for _, _, _, d in sections[1:]):
                sys.exit(f"[{name}] chapter {kind}{number}: not one chapter per page")
            chapters.append((kind, number, chapter, sections))
    return chapters


def build_policy():
    if not os.path.isdir(POLICY_DIR):
        sys.exit(f"[policy] no {POLICY_DIR}: README.md says how to fetch debian-policy (or build --only another)")
    chapters = manual_chapters("policy", [(kind, sorted(glob.glob(os.path.join(POLICY_DIR, pattern))))
                                          for kind, pattern in (("", "ch-*.html"), ("ap", "ap-*.html"))])
    build_sections("policy", "pol", POLICY_DIR, chapters, POLICY_SEED, POLICY_N_QUERIES, POLICY_DOC_MIN_WORDS,
                   POLICY_Q_MIN_WORDS)


def build_sections(name, query_prefix, source, chapters, seed, n_queries, doc_min_words, q_min_words,
                   q_max_depth=None):
    """policy's (and devref's) collection from a manual's chapters (as manual_chapters gives them): one document
    `NAME-NUMBER` (`NAME-apNUMBER` in an appendix) per section of doc_min_words+ words (exact duplicates dropped),
    titled with its chapter's name, its heading not in it; the queries a seeded sample of min(n_queries, candidates)
    of the headings below the chapters' of q_min_words+ words that no other section has (case-insensitive), each
    judged against its own section.  For pyhowto: q_max_depth, the deepest section (depth 1: h2, 2: h3) with a query
    (the deeper ones' documents with none)."""
    heading_count = collections.Counter(h.lower() for _, _, _, secs in chapters for _, h, _, _ in secs)
    items = [(f"{kind}{number}", heading, text, (chapter, depth))
             for kind, _, chapter, sections in chapters for number, heading, text, depth in sections]
    kept, n_short, n_dup = kept_texts(name, items, doc_min_words, "text")
    n_sections = len(items)
    docs, pool = [], []
    n_chapter = n_few = n_repeated = n_deep = 0
    for label, heading, text, (chapter, depth) in kept:
        doc_id = f"{name}-{label}"
        docs.append((doc_id, chapter, text))
        if depth == 0:  # the chapter's name is every one of its documents' title
            n_chapter += 1
        elif q_max_depth is not None and depth > q_max_depth:
            n_deep += 1
        elif len(WORD_RE.findall(heading)) < q_min_words:
            n_few += 1
            print(f"[{name}] heading under {q_min_words} words, no query: {label}: {heading!r}", file=sys.stderr)
        elif heading_count[heading.lower()] > 1:
            n_repeated += 1
            print(f"[{name}] heading used {heading_count[heading.lower()]} times, no query: {label}: {heading!r}",
                  file=sys.stderr)
        else:
            pool.append((doc_id, heading))
    queries, qrels = sampled_questions(pool, seed, n_queries, query_prefix)
    print(f"[{name}] {source}: {len(chapters)} chapters and appendices, {n_sections} sections, {n_short} with a "
          f"text under {doc_min_words} words, {n_dup} duplicate texts, {len(docs)} documents ({n_chapter} "
          f"chapters' introductions), {n_few} headings under {q_min_words} words, {n_repeated} used more than "
          f"once, {len(pool)} candidate queries", file=sys.stderr)
    if q_max_depth is not None:
        print(f"[{name}] {n_deep} sections deeper than depth {q_max_depth}, their documents with no query",
              file=sys.stderr)
    write_collection(name, docs, queries, qrels)
    print(f"[{name}] " + length_summary(queries, docs, "document"), file=sys.stderr)


# ---------------------------------------------------------------------------
# 15. devref
# ---------------------------------------------------------------------------
# The Debian Developer's Reference (the Sphinx HTML pages of Debian's developers-reference, one a chapter, not
# installed here: round 10's held-out set, README.md says how to fetch it); the build stops with a message when that
# folder is missing.  Built as policy, with its parser: every numbered section of a chapter or of the appendix is a
# document, its own text without its heading, titled with its chapter's name; the query is a section's heading.  The
# pages are named after their chapters, not ch-*.html: index.html's second toctree ("Appendix") holds tools.html alone,
# whose numbers start at 1 again; index.html (the title page), search.html and developers-reference.html (the whole
# manual on one page) are not chapters.
DEVREF_DIR = "/tmp/devref/usr/share/developers-reference"
DEVREF_SEED = 20070737
DEVREF_N_QUERIES = 120
DEVREF_DOC_MIN_WORDS = 30
DEVREF_Q_MIN_WORDS = 2
DEVREF_NOT_CHAPTERS = frozenset(("index.html", "search.html", "developers-reference.html"))
DEVREF_APPENDICES = frozenset(("tools.html",))


def build_devref():
    if not os.path.isdir(DEVREF_DIR):
        sys.exit(f"[devref] no {DEVREF_DIR}: README.md says how to fetch developers-reference "
                 "(or build --only another)")
    pages = [p for p in sorted(glob.glob(os.path.join(DEVREF_DIR, "*.html")))
             if os.path.basename(p) not in DEVREF_NOT_CHAPTERS]
    chapters = manual_chapters("devref", [("", [p for p in pages if os.path.basename(p) not in DEVREF_APPENDICES]),
                                          ("ap", [p for p in pages if os.path.basename(p) in DEVREF_APPENDICES])])
    build_sections("devref", "dvr", DEVREF_DIR, chapters, DEVREF_SEED, DEVREF_N_QUERIES, DEVREF_DOC_MIN_WORDS,
                   DEVREF_Q_MIN_WORDS)


# ---------------------------------------------------------------------------
# 16. pyglossary
# ---------------------------------------------------------------------------
# The Python glossary (glossary.html of Debian's python3.11-doc, the package pyfaq was built from, unpacked under
# /tmp/pyfaq: held out of round 10's final default, README.md says how to fetch it); the build stops with a message
# when that file is missing.  Each entry of the page's glossary (a <dt> term with its <dd> definition) is one
# document, the definition's text without its term; the query is the term as written ("abstract base class",
# "__future__", "f-string"), judged against its own entry.  Entries whose term (case-insensitive) another entry has
# too are all dropped.  Read with pyfaq's block tags and character map.
PYGLOSSARY_FILE = "/tmp/pyfaq/usr/share/doc/python3.11/html/glossary.html"
PYGLOSSARY_SEED = 20070738
PYGLOSSARY_N_QUERIES = 200
PYGLOSSARY_DOC_MIN_WORDS = 10   # drops the cross-references ("See global interpreter lock.": 2-6 words), keeps "BDFL"
PYGLOSSARY_Q_MIN_WORDS = 1      # a term of symbols only (">>>", "...") has no word to search for
PYGLOSSARY_SLUG_RE = re.compile(r"[^a-z0-9_]+")


class GlossaryPage(html.parser.HTMLParser):
    """The entries of a Sphinx page's glossary (<dl class="glossary">): for each its terms (the <dt>s before its
    <dd>) and its definition's text.  The permalink marks (headerlink) are left out; a <dl> inside a definition is
    text of it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.entries, self.depth, self.part, self.skip = [], 0, None, None  # depth: <dl>s open inside the glossary

    def handle_starttag(self, tag, attrs):
        if self.skip:
            return
        if tag == "a" and "headerlink" in (dict(attrs).get("class") or "").split():
            self.skip = tag
        elif tag == "dl" and (self.depth or "glossary" in (dict(attrs).get("class") or "").split()):
            self.depth += 1
        elif self.depth == 1 and tag == "dt":
            if not self.entries or self.entries[-1]["text"]:
                self.entries.append({"terms": [], "text": []})
            self.entries[-1]["terms"].append([])
            self.part = self.entries[-1]["terms"][-1]
        elif self.depth == 1 and tag == "dd":
            self.part = self.entries[-1]["text"]
            self.part.append(" ")
        elif self.part is not None and tag in PYFAQ_BLOCK_TAGS:
            self.part.append(" ")

    def handle_endtag(self, tag):
        if self.skip:
            self.skip = None if tag == self.skip else self.skip
        elif self.depth and tag == "dl":
            self.depth -= 1
        elif self.depth == 1 and tag in ("dt", "dd"):
            self.part = None
        elif self.part is not None and tag in PYFAQ_BLOCK_TAGS:
            self.part.append(" ")

    def handle_data(self, data):
        if self.part is not None and not self.skip:
            self.part.append(data)


def glossary_slug(term):
    """A term's part of its document's id: lower-cased, each run of characters other than letters, digits and _
    a hyphen ("abstract-base-class", "__future__", "f-string"); a term of symbols only is spelled by its characters'
    code points in hex (">>>" is "3e-3e-3e")."""
    slug = PYGLOSSARY_SLUG_RE.sub("-", term.lower()).strip("-")
    return slug or "-".join(f"{ord(c):x}" for c in term)


def spelled_slug(term):
    """A term's part of its document's id where glossary_slugs clash (jargon, foldoc: "C" and "C++", "fixed point" and
    "fixed-point"): lower-cased, each run of letters, digits and _ kept, each other character spelled by its code point
    in hex, the parts joined by hyphens ("c-2b-2b", "fixed-20-point", "fixed-2d-point")."""
    return "-".join(part if re.fullmatch(r"[a-z0-9_]+", part) else f"{ord(part):x}"
                    for part in re.findall(r"[a-z0-9_]+|[^a-z0-9_]", term.lower()))


def build_pyglossary():
    if not os.path.isfile(PYGLOSSARY_FILE):
        sys.exit(f"[pyglossary] no {PYGLOSSARY_FILE}: README.md says how to fetch python3.11-doc "
                 "(or build --only another)")
    build_glossary("pyglossary", "glossary", "pgl", PYGLOSSARY_FILE,
                   html_glossary_entries("pyglossary", PYGLOSSARY_FILE), PYGLOSSARY_SEED, PYGLOSSARY_N_QUERIES,
                   PYGLOSSARY_DOC_MIN_WORDS, PYGLOSSARY_Q_MIN_WORDS)


def html_glossary_entries(name, path, page_class=GlossaryPage):
    """(term, definition) for every entry of the glossary of the HTML page at path, read with page_class (pyfaq's
    character map, whitespace collapsed); the build stops when an entry has other than one term."""
    page = page_class()
    with open(path, encoding="utf-8") as f:
        page.feed(f.read())
    page.close()
    plain = lambda parts: norm_ws("".join(parts).translate(PYFAQ_UNSMART))  # noqa: E731
    entries = [([plain(t) for t in e["terms"]], plain(e["text"])) for e in page.entries]
    if any(len(terms) != 1 for terms, _ in entries):
        sys.exit(f"[{name}] {path}: an entry with other than one term")
    return [(terms[0], text) for terms, text in entries]


def build_glossary(name, id_prefix, query_prefix, source, entries, seed, n_queries, doc_min_words, q_min_words,
                   q_max_words=None, max_docs=None, spell_clashes=False, sample_over=None, what="definition",
                   say_short=True, query_re=None):
    """pyglossary's (and gitglossary's and pgglossary's) collection from a glossary's entries, [(term, definition)]:
    entries whose term (case-insensitive) another entry has too are all dropped; one document `ID_PREFIX-SLUG` per
    definition of doc_min_words+ words (exact duplicates dropped), the term not in it; the queries a seeded sample of
    min(n_queries, candidates) of the terms of q_min_words+ words, each judged against its own entry.  For jargon and
    foldoc: q_max_words, the most (whitespace-separated) words of a query (a longer term's document stays, with no
    query); max_docs, a seeded sample (seed) of that many of the kept documents, in id order, when there are more (the
    queries then drawn from the terms of the sample); spell_clashes, the terms whose slugs clash spelled by
    spelled_slug (their other characters' code points) instead of the build stopped.  For devil: sample_over, the
    sample of max_docs drawn only when more than that many are kept (default: max_docs).  For pymodules and wordnet:
    what, the word stderr calls a definition ("text": a page); say_short, false to count the short ones unsaid.  For
    gitconfig: query_re, the form of a term with a query (a term that does not match it all, its document with none)."""
    n_entries = len(entries)
    term_count = collections.Counter(term.lower() for term, _ in entries)
    for term in sorted(t for t, c in term_count.items() if c > 1):
        print(f"[{name}] term used {term_count[term]} times, dropped: {term!r}", file=sys.stderr)
    entries = [(term, text) for term, text in entries if term_count[term.lower()] == 1]
    slugs = collections.Counter(glossary_slug(term) for term, _ in entries)
    slug = glossary_slug
    if spell_clashes and any(c > 1 for c in slugs.values()):
        clashing = {term for term, _ in entries if slugs[glossary_slug(term)] > 1}
        print(f"[{name}] {len(clashing)} terms whose slugs clash, spelled: {sorted(clashing)!r}", file=sys.stderr)
        slug = lambda term: spelled_slug(term) if term in clashing else glossary_slug(term)  # noqa: E731
        slugs = collections.Counter(slug(term) for term, _ in entries)
    if any(c > 1 for c in slugs.values()):
        sys.exit(f"[{name}] two terms with one id: {sorted(s for s, c in slugs.items() if c > 1)}")
    items = [(f"{id_prefix}-{slug(term)}", term, text, None) for term, text in entries]
    kept, n_short, n_dup = kept_texts(name, items, doc_min_words, what, say_short)
    n_kept = len(kept)
    if max_docs is not None and n_kept > (max_docs if sample_over is None else sample_over):
        kept = sorted(random.Random(seed).sample(sorted(kept), max_docs))
        print(f"[{name}] a seeded sample of {max_docs} of the {n_kept} kept {what}s", file=sys.stderr)
    docs, pool, n_few, n_long, n_form = [], [], 0, 0, 0
    for doc_id, term, text, _ in kept:
        docs.append((doc_id, "", text))
        if len(WORD_RE.findall(term)) < q_min_words:
            n_few += 1
            print(f"[{name}] term of no word, no query: {doc_id}: {term!r}", file=sys.stderr)
        elif q_max_words is not None and len(term.split()) > q_max_words:
            n_long += 1
        elif query_re is not None and not query_re.fullmatch(term):
            n_form += 1
        else:
            pool.append((doc_id, term))
    queries, qrels = sampled_questions(sorted(pool), seed, n_queries, query_prefix)
    print(f"[{name}] {source}: {n_entries} entries, {n_entries - len(entries)} with a term used more than once, "
          f"{n_short} with a {what} under {doc_min_words} words, {n_dup} duplicate {what}s, {len(docs)} "
          f"documents, {n_few} terms of no word, {len(pool)} candidate queries", file=sys.stderr)
    if q_max_words is not None or max_docs is not None:
        print(f"[{name}] {n_kept} {what}s kept, {len(docs)} documents; {n_long} terms of over {q_max_words} words "
              "(their documents with no query)", file=sys.stderr)
    if query_re is not None:
        print(f"[{name}] {n_form} terms not of the form of a query (their documents with no query)", file=sys.stderr)
    write_collection(name, docs, queries, qrels)
    print(f"[{name}] " + length_summary(queries, docs, what), file=sys.stderr)


# ---------------------------------------------------------------------------
# 17. gitglossary
# ---------------------------------------------------------------------------
# The Git glossary (the man page gitglossary(7) of Debian's git-man, installed here: held out of round 11's change,
# README.md); the build stops with a message when that page is missing.  Built as pyglossary, from the page as manpages
# renders it (man_render): each term of its DESCRIPTION (a line at the section's least indent) with the lines below it
# (its definition) is an entry; the query is the term as written ("bare repository", "commit-ish (also committish)"),
# judged against its own entry.  The list marks (U+2022) of the definitions are dropped: the HTML glossaries' have none.
GITGLOSSARY_FILE = "/usr/share/man/man7/gitglossary.7.gz"
GITGLOSSARY_SEED = 20070739
GITGLOSSARY_N_QUERIES = 200
GITGLOSSARY_DOC_MIN_WORDS = 10   # drops the cross-references ("Synonym for object name.", "Obsolete for: index.")
GITGLOSSARY_Q_MIN_WORDS = 1


def man_glossary_entries(name, path):
    """(term, definition) for every term of the DESCRIPTION of the man page at path, rendered by man_render: a term
    is a line at the section's least indent, its definition the deeper lines up to the next term (paragraphs, lists
    and the nested lists of terms such as pathspec's magic words), list marks dropped, whitespace collapsed."""
    entries = indented_glossary_entries(name, path, man_section_lines(name, path, "DESCRIPTION"))
    if any(len(terms) != 1 for terms, _ in entries):
        sys.exit(f"[{name}] {path}: an entry with other than one term")
    return [(terms[0], text) for terms, text in entries]


def man_section_lines(name, path, section, subsection=None):
    """The non-blank lines, as (indent, text), of the section ``section`` (a line at no indent) of the man page at
    path, rendered by man_render; where subsection is given, only those of that subsection of it (a line at indent
    3).  The build stops when man cannot render the page or no line is found."""
    rendered = man_render(path)
    if rendered is None:
        sys.exit(f"[{name}] {path}: man could not render it")
    lines, where = [], None
    for line in rendered.split("\n")[1:]:  # the first line is the page header
        indent = len(line) - len(line.lstrip(" "))
        if line.strip() and indent == 0:
            where = (norm_ws(line), None)
        elif line.strip() and indent == 3 and subsection is not None and where:
            where = (where[0], norm_ws(line))
        elif where == (section, subsection) and line.strip():
            lines.append((indent, line.strip()))
    if not lines:
        sys.exit(f"[{name}] {path}: no {section}" + (f" / {subsection}" if subsection else ""))
    return lines


def indented_glossary_entries(name, path, lines):
    """([terms], definition) for every entry of a glossary laid out by indent, lines its non-blank lines as (indent,
    text): a line at the least indent is a term (several in a row are one entry's terms, as Texinfo's @itemx writes
    them), the deeper lines up to the next term its definition, list marks (U+2022) dropped, whitespace collapsed."""
    term_indent = min(indent for indent, _ in lines)
    entries = []
    for indent, text in lines:
        if indent == term_indent:
            if entries and not entries[-1][1]:
                entries[-1][0].append(norm_ws(text))
            else:
                entries.append(([norm_ws(text)], []))
        elif entries:
            entries[-1][1].append(text.replace("\u2022", " "))
        else:
            sys.exit(f"[{name}] {path}: text before the first term")
    return [(terms, norm_ws(" ".join(body))) for terms, body in entries]


def build_gitglossary():
    if not os.path.isfile(GITGLOSSARY_FILE):
        sys.exit(f"[gitglossary] no {GITGLOSSARY_FILE}: install Debian's git-man (README.md; or build --only another)")
    build_glossary("gitglossary", "gitglossary", "ggl", GITGLOSSARY_FILE,
                   man_glossary_entries("gitglossary", GITGLOSSARY_FILE), GITGLOSSARY_SEED, GITGLOSSARY_N_QUERIES,
                   GITGLOSSARY_DOC_MIN_WORDS, GITGLOSSARY_Q_MIN_WORDS)


# ---------------------------------------------------------------------------
# 18. pgglossary
# ---------------------------------------------------------------------------
# The PostgreSQL 15 glossary (Appendix M, glossary.html of Debian's postgresql-doc-15, not installed here: held out of
# round 11's change, README.md says how to fetch it); the build stops with a message when that file is missing.  Built
# as pyglossary, from DocBook's HTML rather than Sphinx's: each <dt> term of the page's glossary with the <dd>s after it
# (its definition; a term of several senses has one <dd> a sense) is an entry; the query is the term as written
# ("Write-ahead log", "Multi-version concurrency control (MVCC)"), judged against its own entry.  The "See X" entries
# (a <dd> of 2-4 words) fall under the 10 words of a definition.
PGGLOSSARY_FILE = "/tmp/pgdoc/usr/share/doc/postgresql-doc-15/html/glossary.html"
PGGLOSSARY_SEED = 20070740
PGGLOSSARY_N_QUERIES = 200
PGGLOSSARY_DOC_MIN_WORDS = 10   # drops the cross-references ("See Write-ahead log.", "See Window function (routine).")
PGGLOSSARY_Q_MIN_WORDS = 1


class DocbookGlossaryPage(GlossaryPage):
    """GlossaryPage for DocBook XSL's HTML: the glossary is the <dl> of the <div class="glosslist">."""

    def __init__(self):
        super().__init__()
        self.in_list = False  # inside the glosslist, before its <dl>

    def handle_starttag(self, tag, attrs):
        if tag == "div" and "glosslist" in (dict(attrs).get("class") or "").split():
            self.in_list = True
        elif tag == "dl" and self.in_list:
            self.in_list, attrs = False, [("class", "glossary")]
        super().handle_starttag(tag, attrs)


def build_pgglossary():
    if not os.path.isfile(PGGLOSSARY_FILE):
        sys.exit(f"[pgglossary] no {PGGLOSSARY_FILE}: README.md says how to fetch postgresql-doc-15 "
                 "(or build --only another)")
    build_glossary("pgglossary", "pgglossary", "pgg", PGGLOSSARY_FILE,
                   html_glossary_entries("pgglossary", PGGLOSSARY_FILE, DocbookGlossaryPage), PGGLOSSARY_SEED,
                   PGGLOSSARY_N_QUERIES, PGGLOSSARY_DOC_MIN_WORDS, PGGLOSSARY_Q_MIN_WORDS)


# ---------------------------------------------------------------------------
# 19. debref
# ---------------------------------------------------------------------------
# The Debian Reference (the DocBook XSL HTML pages ch*.en.html and apa.en.html of Debian's debian-reference-en, one a
# chapter, not installed here: held out of round 11's change, README.md says how to fetch it); the build stops with a
# message when that folder is missing.  Built as devref, with its code (manual_chapters, build_sections) and a parser
# for DocBook's HTML: every numbered section of a chapter or of the appendix is a document, its own text without its
# heading, titled with its chapter's name; the query is a section's heading.  DocBook numbers the appendix with a
# letter (A, A.1, ...), which stays in the ids; its chapter headings say "Chapter 1." and "Appendix A.".  Not read:
# index.en.html (the title page, abstract and table of contents) and pr01.en.html (the Preface, whose heading has no
# number and whose sections are numbered apart, 1-4, as the chapters are).
DEBREF_DIR = "/tmp/debref/usr/share/debian-reference"
DEBREF_SEED = 20070741
DEBREF_N_QUERIES = 120
DEBREF_DOC_MIN_WORDS = 30
DEBREF_Q_MIN_WORDS = 2
# "Chapter 1. " and "1.2.3. ", "Appendix A. " and "A.1. " before a heading
DEBREF_NUMBER_RE = re.compile(r"^(?:Chapter |Appendix )?(?P<number>(?:\d+|[A-Z])(?:\.\d+)*)\.\s+")


class DocbookPage(PyfaqPage):
    """PyfaqPage for DocBook XSL's (XHTML) pages: a <div class="chapter">, "appendix" or "section" is a section, closed
    by its </div>; the table of contents (<div class="toc">), the footnotes (<div class="footnotes">) and the marks
    that cite them (<a class="footnote">) are left out."""

    def __init__(self):
        super().__init__()
        self.divs = []  # for each open <div>: "section", "skip" (one left out) or None (a block)

    def handle_starttag(self, tag, attrs):
        cls = set((dict(attrs).get("class") or "").split())
        if tag == "div":
            kind = None if self.skip else "section" if cls & {"chapter", "appendix", "section"} else \
                "skip" if cls & {"toc", "footnotes"} else None
            self.divs.append(kind)
            if kind == "skip":
                self.skip = "div"
            else:
                super().handle_starttag("section" if kind else tag, attrs)
        elif not self.skip and tag == "a" and "footnote" in cls:
            self.skip = "a"
        else:
            super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag != "div" or not self.divs:
            super().handle_endtag(tag)
            return
        kind = self.divs.pop()
        if kind == "skip":
            self.skip = None
        elif not self.skip:
            super().handle_endtag("section" if kind else tag)


def build_debref():
    if not os.path.isdir(DEBREF_DIR):
        sys.exit(f"[debref] no {DEBREF_DIR}: README.md says how to fetch debian-reference-en "
                 "(or build --only another)")
    pages = sorted(glob.glob(os.path.join(DEBREF_DIR, "ch*.en.html"))) + [os.path.join(DEBREF_DIR, "apa.en.html")]
    chapters = manual_chapters("debref", [("", pages)], DocbookPage, DEBREF_NUMBER_RE)
    build_sections("debref", "dbr", DEBREF_DIR, chapters, DEBREF_SEED, DEBREF_N_QUERIES, DEBREF_DOC_MIN_WORDS,
                   DEBREF_Q_MIN_WORDS)


# ---------------------------------------------------------------------------
# 20. perlglossary
# ---------------------------------------------------------------------------
# Perl's glossary (perlglossary.pod of Debian's perl-doc, the package perlfaq was built from, unpacked under
# /tmp/perlfaq: held out of round 11's default; README.md: how to fetch it); the build stops with a message when that
# file is missing.  Built as pyglossary: each =item of the DESCRIPTION's lists (one a letter, =head2 A ... Z) is a term,
# the paragraphs up to the next =item (verbatim examples too) its definition, read by perldiag's parser; POD codes are
# turned into plain text (the index entries X<...> dropped, links to a URL kept, the escapes E<...> spelled last),
# whitespace collapsed and the pod's typographic quotes and dashes mapped to ASCII by pyfaq's table, save the en dash,
# U+2013, which this pod writes for a hyphen-minus (the switches -a and -T, the operator --): a hyphen-minus here.
PERLGLOSSARY_FILE = os.path.join(PERLFAQ_DIR, "perlglossary.pod")
PERLGLOSSARY_SEED = 20070742
PERLGLOSSARY_N_QUERIES = 200
PERLGLOSSARY_DOC_MIN_WORDS = 10   # drops the cross-references ("See dynamic scoping.", "Same as scalar value.")
PERLGLOSSARY_Q_MIN_WORDS = 1
PERLGLOSSARY_UNSMART = {**PYFAQ_UNSMART, ord("\u2013"): "-"}


def pod_glossary_entries(name, path):
    """(term, definition) for every =item of the DESCRIPTION of the pod at path (perldiag_entries, verbatim kept), POD
    codes turned into plain text (pod_plain, exact), PERLGLOSSARY_UNSMART's character map, whitespace collapsed; the
    build stops when an entry has other than one term."""
    entries = pod_plain_entries(path)
    if any(len(terms) != 1 for terms, _ in entries):
        sys.exit(f"[{name}] {path}: an entry with other than one term")
    return [(terms[0], body) for terms, body in entries]


def pod_plain_entries(path, section="=head1 DESCRIPTION"):
    """(items, text) for every =item group of section of the pod at path (perldiag_entries, verbatim kept), each item
    and the text with POD codes turned into plain text (pod_plain, exact), PERLGLOSSARY_UNSMART's character map,
    whitespace collapsed: pod_glossary_entries' and perlfunc's (a run of blank lines one break: pod_paragraphs)."""
    plain = lambda text: norm_ws(pod_plain(text, exact=True)).translate(PERLGLOSSARY_UNSMART)  # noqa: E731
    return [([plain(item) for item in items], plain(body))
            for items, body in perldiag_entries(path, verbatim=True, section=section, blank_runs=True)]


def fetched_file(name, path, package):
    """path, a file of a package README.md says how to fetch; the build stops with a message when it is missing."""
    if not os.path.isfile(path):
        sys.exit(f"[{name}] no {path}: README.md says how to fetch {package} (or build --only another)")
    return path


def build_perlglossary():
    path = fetched_file("perlglossary", PERLGLOSSARY_FILE, "perl-doc")
    build_glossary("perlglossary", "perlglossary", "plg", path, pod_glossary_entries("perlglossary", path),
                   PERLGLOSSARY_SEED, PERLGLOSSARY_N_QUERIES, PERLGLOSSARY_DOC_MIN_WORDS, PERLGLOSSARY_Q_MIN_WORDS)


# ---------------------------------------------------------------------------
# 21. emacsglossary
# ---------------------------------------------------------------------------
# The Glossary node of the GNU Emacs manual (emacs.info.gz of Debian's non-free emacs-common-non-dfsg, not installed
# here: held out of round 11's default; README.md: how to fetch it); the build stops with a message when that file
# is missing.  Built as pyglossary, from the node as info-index's Info parser reads it (info_read_nodes), its title
# (above its underline) left out: makeinfo writes the glossary (a Texinfo @table) with each term at the left margin and
# its definition indented below it, so gitglossary's grouping by indent serves (indented_glossary_entries); the one
# entry of two terms (@item cf. @itemx c.f.) keeps its first.  The query is the term as written ("Auto Fill Mode",
# "<Alt>", "'C-'"); makeinfo's typographic quotes and dashes are mapped back by pyfaq's table, as for efaq.
EMACSGLOSSARY_FILE = "/tmp/emacsglossary/usr/share/info/emacs/emacs.info.gz"
EMACSGLOSSARY_SEED = 20070743
EMACSGLOSSARY_N_QUERIES = 200
EMACSGLOSSARY_DOC_MIN_WORDS = 10   # drops the cross-references ("*Note Glossary---Numeric Argument::.")
EMACSGLOSSARY_Q_MIN_WORDS = 1


def info_glossary_entries(name, path, node="Glossary"):
    """(term, definition) for every entry of the glossary node of the Info manual at path: its lines after its title
    and underline, pyfaq's character map, grouped by indented_glossary_entries; an entry of several terms keeps its
    first (said on stderr)."""
    found = [lines for node_name, lines in info_read_nodes([path]) if node_name == node]
    if len(found) != 1:
        sys.exit(f"[{name}] {path}: {len(found)} nodes named {node!r}")
    lines = found[0]
    k = next((i for i, l in enumerate(lines) if l.strip()), len(lines))
    if k + 1 >= len(lines) or not INFO_UNDERLINE_RE.match(lines[k + 1]):
        sys.exit(f"[{name}] {path}: node {node!r} has no underlined title")
    body = [(len(l) - len(l.lstrip(" ")), l.strip().translate(PYFAQ_UNSMART)) for l in lines[k + 2:] if l.strip()]
    entries = indented_glossary_entries(name, path, body)
    for terms, _ in entries:
        if len(terms) > 1:
            print(f"[{name}] an entry of {len(terms)} terms, the first kept: {terms!r}", file=sys.stderr)
    return [(terms[0], text) for terms, text in entries]


def build_emacsglossary():
    path = fetched_file("emacsglossary", EMACSGLOSSARY_FILE, "emacs-common-non-dfsg")
    build_glossary("emacsglossary", "emacsglossary", "egl", path, info_glossary_entries("emacsglossary", path),
                   EMACSGLOSSARY_SEED, EMACSGLOSSARY_N_QUERIES, EMACSGLOSSARY_DOC_MIN_WORDS, EMACSGLOSSARY_Q_MIN_WORDS)


# ---------------------------------------------------------------------------
# 22. jargon
# ---------------------------------------------------------------------------
# The Jargon File 4.4.7 (its Lexicon, as the dictd database jargon.index + jargon.dict.dz of Debian's dict-jargon, not
# installed here: held out of round 12; README.md: how to fetch it); the build stops with a message when either file is
# missing.  Built as pyglossary: each entry of the database (dictd_entries) is a term, its headword as the entry writes
# it ("ABEND", "/dev/null", "bit bucket"; the index lower-cases it), and a definition, the entry's text without its
# headword line and the pronunciation and part-of-speech lines under it (" /a'bend/, n."), the {cross-reference}
# braces dropped, pyfaq's character map (the entries' typographic quotes and dashes are w3m's rendering of the HTML),
# whitespace collapsed.  The "See X" and "Syn X" entries fall under the 10 words of a definition.  The query is the
# term as written, of 1-3 words.
JARGON_DICT = "/tmp/dict-jargon/usr/share/dictd/jargon.dict.dz"
JARGON_SEED = 20070744
JARGON_N_QUERIES = 200
JARGON_DOC_MIN_WORDS = 10   # drops the cross-references ("Syn {salt substrate}.", "n. See {bogotify}.")
JARGON_Q_MIN_WORDS = 1
JARGON_Q_MAX_WORDS = 3      # a longer headword is a phrase ("You are in a maze of twisty little passages, all alike")
DICTD_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"  # dictd's digits, most significant 1st
DICTD_META = "00-database-"  # dictfmt's entries about the database itself (its info, short name, URL, ...)
DICTD_XREF_RE = re.compile(r"\{\s*([^{}]*?)\s*\}")  # "{bit bucket}", "{vadding\n    }": a cross-reference
# FOLDOC's "(1998-09-17)" on a line of its own, and its slips "(1997-03-7)", "(200705-05)", "(2001}-02-03)"
DICTD_DATE_RE = re.compile(r"^\(\d+\}?(?:-\d+)+\)\.?$")
# a part of speech that opens the text, not the header (10 Jargon File entries: "n. See {bogotify}.", "adj. [Invented")
DICTD_POS_RE = re.compile(r"^\s*(?:n|v|vt|vi|adj|adv)\.(?:,(?:n|v|vt|vi|adj|adv)\.)*(?=\s)")
DICTD_UNSMART = {**PYFAQ_UNSMART, ord("\u00ad"): None}  # and soft hyphens dropped (7 Jargon File entries: ASCII, ...)


def dictd_number(digits):
    """An offset or length of a dictd index (base 64, A-Z a-z 0-9 + /, most significant digit first)."""
    n = 0
    for c in digits:
        n = n * 64 + DICTD_B64.index(c)
    return n


def dictd_read(name, dict_path, index_path):
    """A dictd database's index, as rows of headword, offset and length (the build stops at a line of any other
    shape), and its text (dictzip is gzip): what dictd_entries and devil_entries read."""
    with open(index_path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    if any(len(row) != 3 for row in rows):
        sys.exit(f"[{name}] {index_path}: a line other than headword, offset and length")
    with gzip.open(dict_path) as f:
        return rows, f.read()


def dictd_report(name, index_path, n_headwords, n_entries, n_several):
    print(f"[{name}] {index_path}: {n_headwords} headwords, {n_entries} entries, {n_several} of several headwords "
          "(the first kept)", file=sys.stderr)


def dictd_entries(name, dict_path, index_path, blank_after_header=True, date_re=DICTD_DATE_RE, meta=DICTD_META):
    """(term, definition) for every entry of the dictd database dict_path (read with gzip: dictzip is gzip), whose
    index, index_path, has a line `headword TAB offset TAB length` for each of its headwords (several can point to one
    entry; FOLDOC's do); the database's own entries (00-database-...) are left out.  An entry's lines up to the first
    blank one are its header: the first is its headword as written, a further line at the left margin another
    headword of it (FOLDOC's "!", "excl", ... under "exclamation mark"), an indented one its pronunciation and part of
    speech (the Jargon File's " /a'bend/, n.", wrapped at times), dropped.  The rest is its definition: a part of
    speech that opens it (DICTD_POS_RE) and the lines holding only a date (FOLDOC's "(1998-09-17)" after each sense)
    dropped, each {cross-reference} (braces holding no brace) its words, DICTD_UNSMART's character map, whitespace
    collapsed.  An entry of several headwords keeps its first (their number said on stderr).  For WordNet's database,
    whose entries have no blank line: blank_after_header false, the header its lines at the left margin at its start;
    date_re None, no line dropped as a date (its "(1829-1909)" is a life's years).  For V.E.R.A.'s, made by an older
    dictfmt: meta, the prefix of the index's headwords of the database's own entries (DEVIL_META)."""
    rows, data = dictd_read(name, dict_path, index_path)
    spans = sorted({(dictd_number(offset), dictd_number(length)) for headword, offset, length in rows
                    if not headword.startswith(meta)})
    entries, n_several = [], 0
    for offset, length in spans:
        lines = data[offset:offset + length].decode("utf-8").split("\n")
        k = next((i for i, line in enumerate(lines)
                  if not line.strip() or not blank_after_header and line[:1].isspace()), None)
        if k is None or not lines[0].strip() or lines[0][:1].isspace():
            sys.exit(f"[{name}] {dict_path}: the entry at {offset} has no headword line or no blank line after it")
        terms = [norm_ws(line.translate(DICTD_UNSMART)) for line in lines[:k] if not line[:1].isspace()]
        n_several += len(terms) > 1
        body = DICTD_POS_RE.sub("", "\n".join(line for line in lines[k:]
                                              if not (date_re and date_re.match(line.strip()))))
        entries.append((terms[0], norm_ws(DICTD_XREF_RE.sub(r"\1", body).translate(DICTD_UNSMART))))
    dictd_report(name, index_path, len(rows), len(spans), n_several)
    return entries


def build_jargon():
    path = fetched_file("jargon", JARGON_DICT, "dict-jargon")
    index = fetched_file("jargon", path[:-len(".dict.dz")] + ".index", "dict-jargon")
    build_glossary("jargon", "jargon", "jrg", path, dictd_entries("jargon", path, index), JARGON_SEED,
                   JARGON_N_QUERIES, JARGON_DOC_MIN_WORDS, JARGON_Q_MIN_WORDS, q_max_words=JARGON_Q_MAX_WORDS,
                   spell_clashes=True)


# ---------------------------------------------------------------------------
# 23. foldoc
# ---------------------------------------------------------------------------
# The Free On-line Dictionary of Computing (of 2023-01-19, as the dictd database foldoc.index + foldoc.dict.dz of
# Debian's dict-foldoc, not installed here: held out of round 12; README.md: how to fetch it); the build stops with a
# message when either file is missing.  Built as jargon (dictd_entries, build_glossary): an entry's first headword is
# its term (its other headwords, FOLDOC's synonyms and spellings, no query), its text without the headwords, the date
# lines ("(1998-09-17)") and the {cross-reference} braces its definition; the "<category>" labels ("<programming>")
# and the "[{Jargon File}]" sources stay, as FOLDOC writes them.  FOLDOC is large: the corpus is a seeded sample of
# FOLDOC_MAX_DOCS of the kept definitions (sorted by id), and the queries a seeded sample of the terms (1-3 words) of
# the entries in it.
FOLDOC_DICT = "/tmp/dict-foldoc/usr/share/dictd/foldoc.dict.dz"
FOLDOC_SEED = 20070745
FOLDOC_N_QUERIES = 200
FOLDOC_MAX_DOCS = 3000
FOLDOC_DOC_MIN_WORDS = 10   # drops the cross-references ("{ATM Adaptation Layer}", "{dash}") and the country codes
FOLDOC_Q_MIN_WORDS = 1
FOLDOC_Q_MAX_WORDS = 3


def build_foldoc():
    """foldoc's collection, a sample: of the definitions build_glossary keeps, a seeded sample (FOLDOC_SEED) of
    FOLDOC_MAX_DOCS, drawn from them sorted by id, is the corpus; the queries are a seeded sample (the same seed) of
    FOLDOC_N_QUERIES of the terms of 1-3 words of the entries in it."""
    path = fetched_file("foldoc", FOLDOC_DICT, "dict-foldoc")
    index = fetched_file("foldoc", path[:-len(".dict.dz")] + ".index", "dict-foldoc")
    build_glossary("foldoc", "foldoc", "fdc", path, dictd_entries("foldoc", path, index), FOLDOC_SEED,
                   FOLDOC_N_QUERIES, FOLDOC_DOC_MIN_WORDS, FOLDOC_Q_MIN_WORDS, q_max_words=FOLDOC_Q_MAX_WORDS,
                   max_docs=FOLDOC_MAX_DOCS, spell_clashes=True)


# ---------------------------------------------------------------------------
# 24. devil
# ---------------------------------------------------------------------------
# The Devil's Dictionary of Ambrose Bierce (the Internet Wiretap edition of 1993, as the dictd database devil.index +
# devil.dict.dz of Debian's dict-devil, not installed here: held out of round 13; README.md: how to fetch it); the build
# stops with a message when either file is missing.  Built as jargon (build_glossary), with a reader of its own
# (devil_entries): its dictfmt is older than jargon's (its database entries are indexed as "00databaseinfo", ...), and
# an entry has no header line: its first line opens with the headword in capitals and its part of speech ("ABASEMENT,
# n.  A decent ..."), the definition running on after them.  The term is that headword, lower-cased (the book sets
# every headword in capitals), but for the two abbreviations ("LL.D.", "R.I.P."); the document is the entry without
# it, and the queries a seeded sample of the terms (1-3 words) of a seeded sample of DEVIL_MAX_DOCS of the kept
# definitions, drawn when more than DEVIL_SAMPLE_OVER are kept (the index then under 500 documents).
DEVIL_DICT = "/tmp/dict-devil/usr/share/dictd/devil.dict.dz"
DEVIL_SEED = 20070746
DEVIL_N_QUERIES = 200
DEVIL_MAX_DOCS = 450
DEVIL_SAMPLE_OVER = 480
DEVIL_DOC_MIN_WORDS = 10   # as jargon's: drops the cross-references ("See {HUSBAND}.") and the one-liners
DEVIL_Q_MIN_WORDS = 1
DEVIL_Q_MAX_WORDS = 3
DEVIL_META = "00database"  # the older dictfmt's index entries about the database ("00databaseinfo", ...)
# An entry's opening: its headword(s) in capitals ("ABASEMENT", "APRIL FOOL", "BERENICE'S HAIR", "BABE or BABY",
# "CONFIDANT, CONFIDANTE", "TZETZE (or TSETSE) FLY", "LL.D.", "CUI BONO?"), then its part of speech at times ("n.",
# "v.t.", "adj. and n.", after ", ", " " or ","), then a comma at times (the letters: "T, the twentieth letter ...").
DEVIL_HEAD_RE = re.compile(r"(?P<head>[A-Z][A-Z0-9'.\-]*(?:(?: |, | or | \(or |\) )[A-Z][A-Z0-9'.\-]*)*\)?\??)"
                           r"(?:,? ?(?:[a-z]+\.)+(?: and (?:[a-z]+\.)+)?)?,?(?=\s|$)")
DEVIL_BROKEN_RE = re.compile(r"(?<=[A-Za-z]-)\n\s*(?=[A-Za-z])")  # a compound broken after its hyphen ("cannon-\nshot")


def devil_entries(name, dict_path, index_path):
    """(term, definition) for every entry of the dictd database of The Devil's Dictionary at dict_path, whose index,
    index_path, has a line `headword TAB offset TAB length` for each headword (lower-cased, its characters other than
    letters, digits and spaces dropped: "berenices hair", "lld"; the 4 entries of two headwords have two), the
    database's own (00database...) left out.  An entry's opening (DEVIL_HEAD_RE) is dropped: its headword or headwords
    and its part of speech.  Its first headword ("BABE" of "BABE or BABY", "TZETZE FLY" of "TZETZE (or TSETSE) FLY", a
    final "." dropped but in an abbreviation) is the term, lower-cased but for an abbreviation ("LL.D."); the build
    stops when the index does not hold it.  The rest is the definition: a compound broken across lines after its
    hyphen joined (DEVIL_BROKEN_RE), each {cross-reference} its words (as dictd_entries), the underscores that mark
    italics ("_Coma Berenices_") dropped, DICTD_UNSMART's character map, whitespace collapsed."""
    rows, data = dictd_read(name, dict_path, index_path)
    headwords = collections.defaultdict(set)
    for headword, offset, length in rows:
        if not headword.startswith(DEVIL_META):
            headwords[(dictd_number(offset), dictd_number(length))].add(headword)
    entries = []
    for offset, length in sorted(headwords):
        entry = data[offset:offset + length].decode("utf-8")
        m = DEVIL_HEAD_RE.match(entry)
        if not m:
            sys.exit(f"[{name}] {dict_path}: the entry at {offset} opens with no headword: {entry[:60]!r}")
        first = re.split(r" or |, ", re.sub(r" \(or [^()]*\)", "", m.group("head")))[0]
        if first.endswith(".") and "." not in first[:-1]:
            first = first[:-1]
        if norm_ws(re.sub(r"[^a-z0-9 ]", "", first.lower())) not in headwords[(offset, length)]:
            sys.exit(f"[{name}] {dict_path}: the entry at {offset} opens with {first!r}, which the index does not "
                     f"hold ({sorted(headwords[(offset, length)])})")
        term = first if re.search(r"\.\w", first) else first.lower()
        body = DICTD_XREF_RE.sub(r"\1", DEVIL_BROKEN_RE.sub("", entry[m.end():])).replace("_", "")
        entries.append((term, norm_ws(body.translate(DICTD_UNSMART))))
    dictd_report(name, index_path, len(rows), len(headwords), sum(len(h) > 1 for h in headwords.values()))
    return entries


def build_devil():
    path = fetched_file("devil", DEVIL_DICT, "dict-devil")
    index = fetched_file("devil", path[:-len(".dict.dz")] + ".index", "dict-devil")
    build_glossary("devil", "devil", "dvl", path, devil_entries("devil", path, index), DEVIL_SEED, DEVIL_N_QUERIES,
                   DEVIL_DOC_MIN_WORDS, DEVIL_Q_MIN_WORDS, q_max_words=DEVIL_Q_MAX_WORDS, max_docs=DEVIL_MAX_DOCS,
                   spell_clashes=True, sample_over=DEVIL_SAMPLE_OVER)


# ---------------------------------------------------------------------------
# 25. mannames
# ---------------------------------------------------------------------------
# Single-word command names over their man pages (held out of round 13).  The pages are manpages' (man_list_pages:
# man1 and man8, Debian-archive packages, no symlinks or .so stubs), rendered and parsed as manpages renders them
# (man_render, man_parse); of them, those whose name (the file name before its section suffix) is one run of letters and
# digits (MANNAMES_NAME_RE: "rsync", "grep"; not "CA.pl", "apt-get"), one page a name (mannames_pages).  The document is
# the page's text without its NAME section (the name and one-line summary) and without its section headings, page
# header and footer: every other mention of the name stays (SYNOPSIS, DESCRIPTION, ...); the query is the name alone,
# judged against its page.  The corpus is a seeded sample of MANNAMES_MAX_DOCS of the kept pages, the queries a seeded
# sample of MANNAMES_N_QUERIES of their names.
MANNAMES_SEED = 20070747
MANNAMES_MAX_DOCS = 450
MANNAMES_N_QUERIES = 200
MANNAMES_DOC_MIN_WORDS = 50   # as manpages' least rendered page
MANNAMES_NAME_RE = re.compile(r"^[a-z][a-z0-9]+$")


def mannames_pages():
    """(name, path, section) of each name of MANNAMES_NAME_RE among man_list_pages, sorted by name: where a name has
    several pages ("passwd.1" and "passwd.1ssl", a section 1 and a section 8 page), the one of section 1 or 8 proper
    before the others, then the first by path (man1 before man8); the others said on stderr."""
    by_name = collections.defaultdict(list)
    for path in man_list_pages():
        fn = os.path.basename(path)
        name, _, section = (fn[:-3] if fn.endswith(".gz") else fn).rpartition(".")
        if MANNAMES_NAME_RE.match(name):
            by_name[name].append((section not in ("1", "8"), path, section))
    pages = []
    for name in sorted(by_name):
        (_, path, section), *others = sorted(by_name[name])
        if others:
            print(f"[mannames] {name}: {path} kept, not {[p for _, p, _ in others]}", file=sys.stderr)
        pages.append((name, path, section))
    return pages


def mannames_body(rendered):
    """The text of a page rendered by man_render, as man_parse reads it (its page header and footer, section headings
    and sub-headings dropped), but for its NAME section: each unit's text (an item's tag and body), joined, whitespace
    collapsed; None for a page with no NAME section."""
    sections = man_parse(rendered)
    if not any(sname == "NAME" for sname, _ in sections):
        return None
    return norm_ws(" ".join((tag + " " + body).strip() if kind == "item" else body
                            for sname, units in sections if sname != "NAME" for kind, tag, body in units))


def man_bodies(name, pages):
    """((name, path, section), rendered, body) for each page of pages, [(name, path, section)], that man renders
    (man_render) and that has a NAME section (mannames_body), in order; the others said on stderr, and the numbers of
    pages not rendered and of pages with no NAME section: mannames' and gitcommands'."""
    # two workers only (2-core machine); results kept in input order
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        rendered = list(ex.map(man_render, [path for _, path, _ in pages]))
    bodies, n_failed, n_noname = [], 0, 0
    for page, r in zip(pages, rendered):
        body = None if r is None else mannames_body(r)
        if r is None:
            n_failed += 1
            print(f"[{name}] man could not render {page[1]}", file=sys.stderr)
        elif body is None:
            n_noname += 1
            print(f"[{name}] no NAME section: {page[1]}", file=sys.stderr)
        else:
            bodies.append((page, r, body))
    return bodies, n_failed, n_noname


def build_mannames():
    """mannames' collection: one document `NAME.SECTION` (title empty) per page of mannames_pages that man renders,
    that has a NAME section and a text of MANNAMES_DOC_MIN_WORDS+ words and is no exact duplicate (case-insensitive)
    of another kept (kept_texts: of the pages with one text, the one whose page header names it, else the first by
    id); of them, a seeded sample (MANNAMES_SEED) of MANNAMES_MAX_DOCS, drawn from them
    sorted by id, is the corpus; the queries a seeded sample (the same seed) of MANNAMES_N_QUERIES of their names."""
    pages = mannames_pages()
    print(f"[mannames] {len(pages)} names of one word", file=sys.stderr)
    bodies, n_failed, n_noname = man_bodies("mannames", pages)
    items = []
    for (name, _, section), r, body in bodies:
        header = next(line for line in r.split("\n") if line.strip()).split()[0]
        items.append((f"{name}.{section}", name, body, header.lower().startswith(name + "(")))
    # of the pages with one text (lz4, lz4c, lz4cat and unlz4), the one that names itself in its header ("LZ4(1)")
    kept, n_short, n_dup = kept_texts("mannames", sorted(items, key=lambda item: (not item[3], item[0])),
                                      MANNAMES_DOC_MIN_WORDS, "text")
    kept, n_kept = sorted(kept), len(kept)
    dropped = sorted({doc_id for doc_id, _, text, _ in items if len(text.split()) >= MANNAMES_DOC_MIN_WORDS}
                     - {doc_id for doc_id, _, _, _ in kept})
    if dropped:
        print(f"[mannames] duplicate texts dropped: {dropped}", file=sys.stderr)
    if n_kept > MANNAMES_MAX_DOCS:
        kept = sorted(random.Random(MANNAMES_SEED).sample(kept, MANNAMES_MAX_DOCS))
    docs = [(doc_id, "", text) for doc_id, _, text, _ in kept]
    queries, qrels = sampled_questions([(doc_id, name) for doc_id, name, _, _ in kept], MANNAMES_SEED,
                                       MANNAMES_N_QUERIES, "mnm")
    print(f"[mannames] {len(pages)} pages, {n_failed} not rendered, {n_noname} with no NAME section, {n_short} with a "
          f"text under {MANNAMES_DOC_MIN_WORDS} words, {n_dup} duplicate texts, {n_kept} kept, {len(docs)} documents",
          file=sys.stderr)
    write_collection("mannames", docs, queries, qrels)
    print("[mannames] " + length_summary(queries, docs, "text"), file=sys.stderr)


# ---------------------------------------------------------------------------
# 26. pymodules
# ---------------------------------------------------------------------------
# Single-word module names over their pages of the Python 3.11 library reference (library/*.html of Debian's
# python3.11-doc, the package pyfaq was built from, unpacked under /tmp/pyfaq: held out of round 14; README.md: how to
# fetch it); the build stops with a message when that folder is missing.  Of the pages whose name (the file name before
# ".html") is one run of lower-case letters and digits (MANNAMES_NAME_RE: "shutil", "zipfile", "bz2"; not "os.path",
# "py_compile"), those whose title, the heading of their first <section> (the h1), opens with that name, a space, an em
# dash (U+2014) and a space (Sphinx's rendering of the source's "---": "shutil --- High-level file operations") are a
# module's; the others are topics ("functions": "Built-in Functions", "profile": "The Python Profilers", "pyexpat":
# "xml.parsers.expat --- ...").  The document is the page's text without that title, as pyfaq's parser reads it (its
# <section>s only, so not the navigation, sidebar and footer; permalinks and local tables of contents left out), its
# other headings kept: every other mention of the name stays ("Source code: Lib/shutil.py", "shutil.copyfile(src, dst)",
# ...).  The query is the name alone, judged against its page.  Built with build_glossary's code: a seeded sample of
# PYMODULES_MAX_DOCS pages when over PYMODULES_SAMPLE_OVER.
PYMODULES_DIR = "/tmp/pyfaq/usr/share/doc/python3.11/html/library"
PYMODULES_SEED = 20070748
PYMODULES_N_QUERIES = 200
PYMODULES_MAX_DOCS = 450
PYMODULES_SAMPLE_OVER = 480
PYMODULES_DOC_MIN_WORDS = 50   # as mannames'


def pymodules_pages():
    """(name, title, text) of each page of PYMODULES_DIR whose name is of MANNAMES_NAME_RE, sorted by name: title is
    the heading of its first <section> (whitespace collapsed), text the rest of its sections in order, each section's
    heading and own text, read with PyfaqPage, pyfaq's character map, whitespace collapsed."""
    pages = []
    for path in sorted(glob.glob(os.path.join(PYMODULES_DIR, "*.html"))):
        name = os.path.basename(path)[:-len(".html")]
        if not MANNAMES_NAME_RE.match(name):
            continue
        page = PyfaqPage()
        with open(path, encoding="utf-8") as f:
            page.feed(f.read())
        page.close()
        if not page.sections:
            pages.append((name, "", ""))
            continue
        parts = [part for i, s in enumerate(page.sections) for part in (s["title"] if i else []) + [" "] + s["text"]]
        pages.append((name, norm_ws("".join(page.sections[0]["title"])),
                      norm_ws("".join(parts).translate(PYFAQ_UNSMART))))
    return pages


def build_pymodules():
    if not os.path.isdir(PYMODULES_DIR):
        sys.exit(f"[pymodules] no {PYMODULES_DIR}: README.md says how to fetch python3.11-doc "
                 "(or build --only another)")
    pages = pymodules_pages()
    entries = [(name, text) for name, title, text in pages if title.startswith(name + " \u2014 ")]
    for name, title, _ in pages:
        if not title.startswith(name + " \u2014 "):
            print(f"[pymodules] {name}.html left out, its title names no module {name}: {title!r}", file=sys.stderr)
    print(f"[pymodules] {len(pages)} pages of one-word names, {len(entries)} of a module", file=sys.stderr)
    build_glossary("pymodules", "pymodules", "pym", PYMODULES_DIR, entries, PYMODULES_SEED, PYMODULES_N_QUERIES,
                   PYMODULES_DOC_MIN_WORDS, 1, q_max_words=1, max_docs=PYMODULES_MAX_DOCS,
                   sample_over=PYMODULES_SAMPLE_OVER, what="text")


# ---------------------------------------------------------------------------
# 27. wordnet
# ---------------------------------------------------------------------------
# WordNet 3.0 (the dictd database wn.index + wn.dict.dz of Debian's dict-wn, not installed here: held out of round 14;
# README.md: how to fetch it); the build stops with a message when either file is missing.  Built as jargon
# (dictd_entries, build_glossary): an entry is its headword line, then its senses, indented, with no blank line between
# ("python" / "    n 1: large Old World boas" / "    2: a soothsaying spirit ..."); the database has one entry for the
# headwords that differ only in case ("China" holds china, the porcelain), so the term is the headword lower-cased, and
# only the terms of one word of letters (WORDNET_TERM_RE: "python", "aachen"; not "'hood", ".22 caliber", "go-ahead")
# are kept.  The document is the entry without its headword line: the senses as WordNet writes them, their part of
# speech and number ("n 1:", "2:"), examples and [syn: ...] lists (which name the headword too) kept.  The corpus is a
# seeded sample of WORDNET_MAX_DOCS of the kept entries, the queries a seeded sample of WORDNET_N_QUERIES of their
# terms.
WORDNET_DICT = "/tmp/dict-wn/usr/share/dictd/wn.dict.dz"
WORDNET_SEED = 20070749
WORDNET_N_QUERIES = 200
WORDNET_MAX_DOCS = 450
WORDNET_DOC_MIN_WORDS = 10   # as jargon's; drops one-line senses ("n 1: (slang) a neighborhood")
WORDNET_TERM_RE = re.compile(r"^[a-z]+$")


def build_wordnet():
    path = fetched_file("wordnet", WORDNET_DICT, "dict-wn")
    index = fetched_file("wordnet", path[:-len(".dict.dz")] + ".index", "dict-wn")
    entries = dictd_entries("wordnet", path, index, blank_after_header=False, date_re=None)
    terms = [(term.lower(), text) for term, text in entries if WORDNET_TERM_RE.match(term.lower())]
    print(f"[wordnet] {len(terms)} of the {len(entries)} headwords are one word of letters", file=sys.stderr)
    # over 8,000 short definitions: counted, not each said
    build_glossary("wordnet", "wordnet", "wnt", path, terms, WORDNET_SEED, WORDNET_N_QUERIES, WORDNET_DOC_MIN_WORDS,
                   1, q_max_words=1, max_docs=WORDNET_MAX_DOCS, spell_clashes=True, say_short=False)


# ---------------------------------------------------------------------------
# 28. gitcommands
# ---------------------------------------------------------------------------
# Git's commands over their man pages (the pages git-NAME.1 of Debian's git-man, installed here: held out of round 14's
# final default).  Of the pages manpages reads (man_list_pages), those of man1 named git-NAME.1.gz whose NAME is one run
# of lower-case letters and digits (MANNAMES_NAME_RE: "rebase", "bisect"; not "cherry-pick", "http-backend"), one page
# a name; rendered and read as mannames' (man_bodies: the page without its NAME section, its headings, header and
# footer), so the page still names itself ("git rebase") in its SYNOPSIS, DESCRIPTION and examples.  The query is the
# NAME alone (without "git"), judged against its page.  Built with build_glossary's code, as pymodules: a seeded
# sample of GITCOMMANDS_MAX_DOCS pages when over GITCOMMANDS_SAMPLE_OVER.
GITCOMMANDS_SEED = 20070750
GITCOMMANDS_N_QUERIES = 200
GITCOMMANDS_MAX_DOCS = 450
GITCOMMANDS_SAMPLE_OVER = 480
GITCOMMANDS_DOC_MIN_WORDS = 50   # as mannames'
GITCOMMANDS_DIR = "/usr/share/man/man1"
GITCOMMANDS_FILE_RE = re.compile(r"^git-(?P<name>.+)\.1\.gz$")


def build_gitcommands():
    paths = [path for path in man_list_pages()
             if os.path.dirname(path) == GITCOMMANDS_DIR and GITCOMMANDS_FILE_RE.match(os.path.basename(path))]
    if not paths:
        sys.exit(f"[gitcommands] no {GITCOMMANDS_DIR}/git-*.1.gz (Debian: git-man)")
    pages = [(GITCOMMANDS_FILE_RE.match(os.path.basename(path))["name"], path, "1") for path in paths]
    left_out = [name for name, _, _ in pages if not MANNAMES_NAME_RE.match(name)]
    print(f"[gitcommands] {len(pages)} pages git-NAME.1, {len(left_out)} left out, their NAME not one word: "
          f"{left_out}", file=sys.stderr)
    pages = [page for page in pages if MANNAMES_NAME_RE.match(page[0])]
    bodies, n_failed, n_noname = man_bodies("gitcommands", pages)
    print(f"[gitcommands] {len(pages)} pages, {n_failed} not rendered, {n_noname} with no NAME section",
          file=sys.stderr)
    build_glossary("gitcommands", "gitcommands", "gtc", f"{GITCOMMANDS_DIR}/git-*.1.gz",
                   [(name, body) for (name, _, _), _, body in bodies], GITCOMMANDS_SEED, GITCOMMANDS_N_QUERIES,
                   GITCOMMANDS_DOC_MIN_WORDS, 1, q_max_words=1, max_docs=GITCOMMANDS_MAX_DOCS,
                   sample_over=GITCOMMANDS_SAMPLE_OVER, what="text")


# ---------------------------------------------------------------------------
# 29. perlfunc
# ---------------------------------------------------------------------------
# Perl's built-in functions (perlfunc.pod of Debian's perl-doc, the package perlfaq was built from, unpacked under
# /tmp/perlfaq: held out of round 14's final default; README.md: how to fetch it); the build stops with a message when
# that file is missing.  Each group of =item lines of the "Alphabetical Listing of Perl Functions" (one a call form:
# "chomp VARIABLE", "chomp( LIST )", "chomp") with the paragraphs up to the next group is an entry, read as
# perlglossary's (pod_plain_entries: verbatim examples kept, POD codes as plain text); its names are the items' first
# words.  Consecutive groups of one name are one function ("do BLOCK" then "do EXPR"; "select", "use"); a group of
# several names ("getpwnam NAME" ... "endservent", "shmread"/"shmwrite") is one entry, its query its first name, so
# each query has one relevant document.  Entries whose first name is no plain word are left out ("-X", "m//", "s///",
# "q/STRING/", "__FILE__").  The document is the entry's text without its =item lines; the query is the name alone.
PERLFUNC_FILE = os.path.join(PERLFAQ_DIR, "perlfunc.pod")
PERLFUNC_SECTION = "=head2 Alphabetical Listing of Perl Functions"
PERLFUNC_SEED = 20070751
PERLFUNC_N_QUERIES = 200
PERLFUNC_MAX_DOCS = 450
PERLFUNC_SAMPLE_OVER = 480
PERLFUNC_DOC_MIN_WORDS = 10   # as perlglossary's ("m//": "The match operator. See perlop ...", no word name anyway)
PERLFUNC_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
PERLFUNC_ITEM_NAME_RE = re.compile(r"[^\s(]*")  # "chomp( LIST )": chomp


def perlfunc_entries(name, path):
    """(names, text) of each function of the pod at path (pod_plain_entries, PERLFUNC_SECTION): names the distinct
    first words of its =item lines, in order; consecutive groups whose first names are one are one entry, their texts
    joined."""
    entries = []
    for items, text in pod_plain_entries(path, PERLFUNC_SECTION):
        names = list(dict.fromkeys(PERLFUNC_ITEM_NAME_RE.match(item).group(0) for item in items))
        if entries and entries[-1][0][0] == names[0]:
            print(f"[{name}] {names[0]}: two groups of =items, one entry", file=sys.stderr)
            entries[-1] = (list(dict.fromkeys(entries[-1][0] + names)), entries[-1][1] + " " + text)
        else:
            entries.append((names, text))
    return entries


def build_perlfunc():
    path = fetched_file("perlfunc", PERLFUNC_FILE, "perl-doc")
    entries = perlfunc_entries("perlfunc", path)
    for names, _ in entries:
        if not PERLFUNC_NAME_RE.match(names[0]):
            print(f"[perlfunc] left out, no plain word: {names}", file=sys.stderr)
        elif len(names) > 1:
            print(f"[perlfunc] {names[0]}: one entry for {len(names)} names, the query the first: {names}",
                  file=sys.stderr)
    terms = [(names[0], text) for names, text in entries if PERLFUNC_NAME_RE.match(names[0])]
    print(f"[perlfunc] {len(entries)} entries, {len(terms)} named by a plain word", file=sys.stderr)
    build_glossary("perlfunc", "perlfunc", "pfn", path, terms, PERLFUNC_SEED, PERLFUNC_N_QUERIES,
                   PERLFUNC_DOC_MIN_WORDS, 1, q_max_words=1, max_docs=PERLFUNC_MAX_DOCS,
                   sample_over=PERLFUNC_SAMPLE_OVER, what="text")


# ---------------------------------------------------------------------------
# 30. perlmods
# ---------------------------------------------------------------------------
# Perl's core modules over their POD (the .pm files under /usr/share/perl/5.36 of Debian's perl-modules-5.36, installed
# here, else unpacked under /tmp/perlmods as README.md says: held out of round 15).  A module is a .pm file, its name
# the path below that folder with "::" for "/" and without ".pm" ("File::Temp", "strict"); its POD is the .pod beside
# it where there is one (Pod::Simple's), else the .pm's; either read from its first =word line, block by block
# (pod_paragraphs, embedded: Pod/Simple.pod opens with a blank line).  The document is the POD's text without its NAME
# section (the name and a one-line summary): headings, =item texts, prose (its codes made plain, exact) and verbatim
# examples, as perlfaq's and perlglossary's (pod_body_text, PERLGLOSSARY_UNSMART), =begin ... =end blocks and =for
# paragraphs left out; every other mention of the name stays.  Modules whose POD has no NAME section are left out.
# Built with build_glossary's code: the query is the name as written, judged against its own POD; a seeded sample of
# PERLMODS_MAX_DOCS modules only when over that many (all are kept otherwise).
PERLMODS_DIRS = ("/usr/share/perl/5.36", "/tmp/perlmods/usr/share/perl/5.36")
PERLMODS_SEED = 20070752
PERLMODS_N_QUERIES = 200
PERLMODS_MAX_DOCS = 3000
PERLMODS_DOC_MIN_WORDS = 50   # as mannames'


def perlmods_text(path):
    """(whether the POD at path has a NAME section, its text without that section), as the module's of perlmods."""
    plain = lambda text: pod_plain(text, exact=True)  # noqa: E731
    parts, has_name, in_name, in_begin = [], False, False, False
    for lines in pod_paragraphs(path, blank_runs=True, embedded=True):
        para = "\n".join(lines)
        if para.startswith(("=begin", "=end")):
            in_begin = para.startswith("=begin")
        elif in_begin or para.startswith("=for"):
            continue  # not shown by formatters (as perldiag_entries' =begin blocks)
        elif para.startswith("=head"):
            heading = norm_ws(plain(para[len("=head1"):]))
            if para.startswith("=head1"):
                in_name = heading.upper() == "NAME"
                has_name = has_name or in_name
            if not in_name:
                parts.append(heading)
        elif not in_name and not (para.startswith("=") and not para.startswith("=item")):
            parts.append(pod_body_text(para, plain))
    return has_name, norm_ws(" ".join(parts)).translate(PERLGLOSSARY_UNSMART)


def perlmods_pages(top):
    """(name, path, has NAME, text) of each .pm file under top (symlinks followed), sorted by name."""
    pages = []
    for root, _, files in os.walk(top, followlinks=True):
        for fn in files:
            if fn.endswith(".pm"):
                path = os.path.join(root, fn)
                pod = path[:-len(".pm")] + ".pod"
                name = os.path.relpath(path, top)[:-len(".pm")].replace(os.sep, "::")
                path = pod if os.path.isfile(pod) else path
                pages.append((name, path, *perlmods_text(path)))
    return sorted(pages)


def build_perlmods():
    top = next((d for d in PERLMODS_DIRS if os.path.isdir(d)), None)
    if top is None:
        sys.exit(f"[perlmods] no {' or '.join(PERLMODS_DIRS)}: README.md says how to fetch perl-modules-5.36 "
                 "(or build --only another)")
    pages = perlmods_pages(top)
    no_name = [name for name, _, has_name, _ in pages if not has_name]
    print(f"[perlmods] {len(pages)} modules, {sum(path.endswith('.pod') for _, path, _, _ in pages)} with a .pod "
          f"beside them, {len(no_name)} left out, their POD with no NAME section: {no_name}", file=sys.stderr)
    build_glossary("perlmods", "perlmods", "pmd", f"{top}/**/*.pm",
                   [(name, text) for name, _, has_name, text in pages if has_name], PERLMODS_SEED,
                   PERLMODS_N_QUERIES, PERLMODS_DOC_MIN_WORDS, 1, q_max_words=1, max_docs=PERLMODS_MAX_DOCS,
                   what="text")


# ---------------------------------------------------------------------------
# 31. debsynopsis
# ---------------------------------------------------------------------------
# Debian packages' synopses over their long descriptions (held out of round 15): read as debian-packages reads them
# (deb_descriptions: the synopsis, the short description of the apt lists; the long description of dpkg's status
# file, else of the archive's DEP-11 metadata).  The document is the long description alone (title empty), kept when
# of DEBSYNOPSIS_DOC_MIN_WORDS+ words and no exact duplicate (kept_texts: several packages of one source share one),
# and when it is no document's text of the committed debian-packages (so the two share none); the corpus a seeded
# sample of DEBSYNOPSIS_MAX_DOCS of them when there are more.  The query is the synopsis, judged against its own
# package, when no other document of the corpus has that synopsis and no debian-packages query is it.
DEBSYNOPSIS_SEED = 20070753
DEBSYNOPSIS_N_QUERIES = 200
DEBSYNOPSIS_MAX_DOCS = 2000
DEBSYNOPSIS_DOC_MIN_WORDS = 20


def build_debsynopsis():
    avail, longdesc = deb_descriptions("debsynopsis")
    # the committed debian-packages (not a rebuild: this machine's state may differ from the one it was built on)
    with open(os.path.join(HERE, "debian-packages", "corpus.jsonl"), encoding="utf-8") as f:
        deb_texts = {json.loads(line)["text"].lower() for line in f}
    with open(os.path.join(HERE, "debian-packages", "queries.jsonl"), encoding="utf-8") as f:
        deb_queries = {json.loads(line)["text"].lower() for line in f}
    items = [(pkg, avail[pkg][1], longdesc[pkg][1], None) for pkg in sorted(longdesc)]
    kept, n_short, n_dup = kept_texts("debsynopsis", items, DEBSYNOPSIS_DOC_MIN_WORDS, "long description",
                                      say_short=False)
    n_kept = len(kept)
    kept = [item for item in kept if item[2].lower() not in deb_texts]
    print(f"[debsynopsis] {len(items)} long descriptions, {n_short} under {DEBSYNOPSIS_DOC_MIN_WORDS} words, "
          f"{n_dup} duplicates, {n_kept} kept, {n_kept - len(kept)} of them left out as debian-packages' documents: "
          f"{len(kept)}", file=sys.stderr)
    if len(kept) > DEBSYNOPSIS_MAX_DOCS:
        kept = sorted(random.Random(DEBSYNOPSIS_SEED).sample(kept, DEBSYNOPSIS_MAX_DOCS))
        print(f"[debsynopsis] a seeded sample of {DEBSYNOPSIS_MAX_DOCS}", file=sys.stderr)
    docs = [(pkg, "", text) for pkg, _, text, _ in kept]
    pool, shared = unambiguous_questions([(pkg, short) for pkg, short, _, _ in kept if WORD_RE.search(short)])
    n_pool = len(pool)
    pool = [(pkg, short) for pkg, short in pool if short.lower() not in deb_queries]
    print(f"[debsynopsis] {len(shared)} synopses of several documents, dropped: {sorted(shared)}; "
          f"{n_pool - len(pool)} synopses that are debian-packages' queries, dropped; {len(pool)} candidate queries",
          file=sys.stderr)
    queries, qrels = sampled_questions(sorted(pool), DEBSYNOPSIS_SEED, DEBSYNOPSIS_N_QUERIES, "dsy")
    write_collection("debsynopsis", docs, queries, qrels)
    print("[debsynopsis] " + length_summary(queries, docs, "long description"), file=sys.stderr)


# ---------------------------------------------------------------------------
# 32. cfuncs
# ---------------------------------------------------------------------------
# C library functions over their man pages (the pages of /usr/share/man/man3 of Debian's manpages-dev, installed here:
# held out of round 15).  Of the pages manpages reads there (man_list_pages: no symlinks, which is what Debian makes of
# the man-pages project's .so links, "free.3.gz -> malloc.3.gz", and no .so stubs), those of manpages-dev (its dpkg
# file list) of section 3 proper (not the constants', types' and headers' 3const, 3type and 3head), whose name, the
# file name before ".3.gz", is one run of letters, digits and _ (CFUNCS_NAME_RE: "malloc", "strtok", "pthread_create",
# "CPU_SET"); one page a name.  Rendered and read as mannames' (man_bodies: the page without its NAME section, its
# headings, header and footer), so the page still names the function in its SYNOPSIS, DESCRIPTION and examples; but
# the box drawing of its tables (ATTRIBUTES: at man's width of 2,000 columns each rule a run of some 2,000 "─", two
# thirds of the characters) is dropped, each run a space (CFUNCS_BOX_RE), the table's words kept.  The query
# is the name alone, judged against its page.  Built with build_glossary's code, as gitcommands: a seeded sample
# of CFUNCS_MAX_DOCS pages when over CFUNCS_SAMPLE_OVER.
CFUNCS_SEED = 20070754
CFUNCS_N_QUERIES = 200
CFUNCS_MAX_DOCS = 450
CFUNCS_SAMPLE_OVER = 480
CFUNCS_DOC_MIN_WORDS = 50   # as mannames'
CFUNCS_DIR = "/usr/share/man/man3"
CFUNCS_PACKAGE_LIST = "/var/lib/dpkg/info/manpages-dev.list"
CFUNCS_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
CFUNCS_BOX_RE = re.compile(r"[\u2500-\u257f]+")  # box drawing (U+2500-U+257F): "┌───┬───┐", "│"


def build_cfuncs():
    build_man_section("cfuncs", "cfn", CFUNCS_DIR, "3", "3const, 3type or 3head", CFUNCS_SEED, CFUNCS_N_QUERIES,
                      CFUNCS_MAX_DOCS, CFUNCS_SAMPLE_OVER)


def build_man_section(name, query_prefix, man_dir, section, others, seed, n_queries, max_docs, sample_over):
    """cfuncs' (and syscalls') collection from the pages of man_dir of manpages-dev of the section proper (NAME.SECTION,
    not the others, e.g. 3const, 3type or 3head) whose NAME is of CFUNCS_NAME_RE, rendered by man_bodies, box drawing
    dropped (CFUNCS_BOX_RE), built by build_glossary: a seeded sample of max_docs pages when over sample_over."""
    with open(fetched_file(name, CFUNCS_PACKAGE_LIST, "manpages-dev"), encoding="utf-8") as f:
        owned = set(f.read().split("\n"))
    paths = [path for path in man_list_pages((man_dir,)) if path in owned]
    file_re = re.compile(rf"^(?P<name>.+)\.{section}\.gz$")
    pages = [(m["name"], path, section) for path in paths if (m := file_re.match(os.path.basename(path)))]
    if not pages:
        sys.exit(f"[{name}] no {man_dir}/*.{section}.gz of manpages-dev (Debian: manpages-dev)")
    left_out = [page for page, _, _ in pages if not CFUNCS_NAME_RE.match(page)]
    print(f"[{name}] {len(paths)} pages of manpages-dev, {len(paths) - len(pages)} of them of {others}, "
          f"{len(pages)} NAME.{section}, {len(left_out)} left out, their NAME not one word: {left_out}",
          file=sys.stderr)
    pages = [page for page in pages if CFUNCS_NAME_RE.match(page[0])]
    bodies, n_failed, n_noname = man_bodies(name, pages)
    print(f"[{name}] {len(pages)} pages, {n_failed} not rendered, {n_noname} with no NAME section", file=sys.stderr)
    build_glossary(name, name, query_prefix, f"{man_dir}/*.{section}.gz",
                   [(page, norm_ws(CFUNCS_BOX_RE.sub(" ", body))) for (page, _, _), _, body in bodies], seed,
                   n_queries, CFUNCS_DOC_MIN_WORDS, 1, q_max_words=1, max_docs=max_docs, sample_over=sample_over,
                   what="text")


# ---------------------------------------------------------------------------
# 33. vera
# ---------------------------------------------------------------------------
# V.E.R.A., the Virtual Entity of Relevant Acronyms (of August 2020, as the dictd database vera.index + vera.dict.dz
# of Debian's dict-vera, not installed here: held out of round 15; README.md: how to fetch it); the build stops with a
# message when either file is missing.  Built as wordnet (dictd_entries, build_glossary): an entry is its headword line
# (the acronym, "APM"), then its expansion, indented, with no blank line after the headword ("Advanced Power
# Management"; at times "(org., Intel, ...)" and a spelling, '"OS/8"', after it); its dictfmt is devil's (the database's
# own entries indexed as "00databaseinfo", ...).  V.E.R.A. has one entry per expansion, so an acronym of several ("API",
# "APM") has several entries: they are one term here, its document its expansions in the database's order, joined by
# "; ".  Only the terms of one word of letters and digits (VERA_TERM_RE; all are, V.E.R.A. spells "OS/8" "OS8") are
# kept; the query is the acronym as written, the document its expansions without the headword line.  The corpus is a
# seeded sample of VERA_MAX_DOCS of the kept terms, the queries a seeded sample of VERA_N_QUERIES of them.
VERA_DICT = "/tmp/dict-vera/usr/share/dictd/vera.dict.dz"
VERA_SEED = 20070755
VERA_N_QUERIES = 200
VERA_MAX_DOCS = 450
VERA_SAMPLE_OVER = 480
VERA_DOC_MIN_WORDS = 2   # an expansion is short ("Turing Machine"); drops the one-word ones ("BefehlsZaehlRegister")
VERA_TERM_RE = re.compile(r"^[A-Za-z0-9]+$")


def build_vera():
    path = fetched_file("vera", VERA_DICT, "dict-vera")
    index = fetched_file("vera", path[:-len(".dict.dz")] + ".index", "dict-vera")
    entries = dictd_entries("vera", path, index, blank_after_header=False, date_re=None, meta=DEVIL_META)
    senses = collections.defaultdict(list)
    for term, text in entries:
        senses[term].append(text)
    terms = [(term, "; ".join(texts)) for term, texts in senses.items() if VERA_TERM_RE.match(term)]
    print(f"[vera] {len(entries)} entries, {len(senses)} headwords ({sum(len(t) > 1 for t in senses.values())} of "
          f"several expansions, joined), {len(terms)} of one word of letters and digits", file=sys.stderr)
    build_glossary("vera", "vera", "vra", path, terms, VERA_SEED, VERA_N_QUERIES, VERA_DOC_MIN_WORDS, 1,
                   q_max_words=1, max_docs=VERA_MAX_DOCS, sample_over=VERA_SAMPLE_OVER, say_short=False)



# ---------------------------------------------------------------------------
# 34. syscalls
# ---------------------------------------------------------------------------
# Linux system calls over their man pages (the pages of /usr/share/man/man2 of Debian's manpages-dev, installed here:
# held out of round 16).  Built as cfuncs, with its code (build_man_section): of the pages man_list_pages reads there
# (no symlinks, "_Exit.2.gz -> _exit.2.gz", "__clone2.2.gz -> clone.2.gz", and no .so stubs), those of manpages-dev of
# section 2 proper (not 2type, open_how.2type), whose name, the file name before ".2.gz", is one run of letters, digits
# and _ (CFUNCS_NAME_RE: "fork", "openat", "epoll_wait", "_exit"); one page a name.  The document is the page without
# its NAME section, box drawing dropped; the query is the name alone, judged against its page.  All the kept pages when
# SYSCALLS_MAX_DOCS or fewer, else a seeded sample of that many; the queries a seeded sample of SYSCALLS_N_QUERIES.
SYSCALLS_SEED = 20070756
SYSCALLS_N_QUERIES = 200
SYSCALLS_MAX_DOCS = 450
SYSCALLS_DIR = "/usr/share/man/man2"


def build_syscalls():
    build_man_section("syscalls", "scl", SYSCALLS_DIR, "2", "2type", SYSCALLS_SEED, SYSCALLS_N_QUERIES,
                      SYSCALLS_MAX_DOCS, SYSCALLS_MAX_DOCS)


# ---------------------------------------------------------------------------
# 35. pyhowto
# ---------------------------------------------------------------------------
# The Python HOWTOs (howto/*.html of Debian's python3.11-doc, the package pyfaq and pymodules were built from, unpacked
# under /tmp/pyfaq: held out of round 16; README.md: how to fetch it); the build stops with a message when that folder
# is missing.  Built as policy, with its code (policy_sections with PolicyPage, build_sections): one page a chapter (all
# but index.html, which only lists them), its title the h1; every <section> of a page is a document, its own text (not
# its subsections', footnotes dropped) without its heading, titled with its page's title, kept when of
# PYHOWTO_DOC_MIN_WORDS+ words (long documents).  Sphinx numbers no heading here: a section is numbered by its place in
# its page (`pyhowto-sorting-03`).  The query is the heading of a section of h2 or h3 (depth 1 or 2; the page's own
# text, depth 0, and the few h4 sections, depth 3, are documents with no query) of PYHOWTO_Q_MIN_WORDS+ runs of letters
# and digits that no other section's heading is (case-insensitive), judged against its section; a seeded sample of
# PYHOWTO_N_QUERIES of them.  Every kept section is a document (fewer than PYHOWTO_MAX_DOCS: the build stops if not).
PYHOWTO_DIR = "/tmp/pyfaq/usr/share/doc/python3.11/html/howto"
PYHOWTO_SEED = 20070757
PYHOWTO_N_QUERIES = 200
PYHOWTO_MAX_DOCS = 450
PYHOWTO_DOC_MIN_WORDS = 150
PYHOWTO_Q_MIN_WORDS = 2
PYHOWTO_Q_MAX_DEPTH = 2   # h3


def build_pyhowto():
    if not os.path.isdir(PYHOWTO_DIR):
        sys.exit(f"[pyhowto] no {PYHOWTO_DIR}: README.md says how to fetch python3.11-doc (or build --only another)")
    chapters = []
    for path in sorted(glob.glob(os.path.join(PYHOWTO_DIR, "*.html"))):
        stem = os.path.basename(path)[:-len(".html")]
        if stem == "index":
            continue
        sections = policy_sections("pyhowto", path, number_re=None)
        if not sections or sections[0][3] != 0 or any(depth == 0 for _, _, _, depth in sections[1:]):
            sys.exit(f"[pyhowto] {path}: not one h1 section first")
        chapters.append(("", stem, sections[0][1], [(f"{stem}-{n}", h, t, d) for n, h, t, d in sections]))
    n_long = sum(len(t.split()) >= PYHOWTO_DOC_MIN_WORDS for _, _, _, secs in chapters for _, _, t, _ in secs)
    if n_long > PYHOWTO_MAX_DOCS:
        sys.exit(f"[pyhowto] {n_long} sections of {PYHOWTO_DOC_MIN_WORDS}+ words, over {PYHOWTO_MAX_DOCS}")
    build_sections("pyhowto", "pht", PYHOWTO_DIR, chapters, PYHOWTO_SEED, PYHOWTO_N_QUERIES, PYHOWTO_DOC_MIN_WORDS,
                   PYHOWTO_Q_MIN_WORDS, q_max_depth=PYHOWTO_Q_MAX_DEPTH)


# ---------------------------------------------------------------------------
# 36. musicglossary
# ---------------------------------------------------------------------------
# LilyPond's Music Glossary (the Info manual music-glossary.info.gz of Debian's lilypond-doc, not installed here: built
# blind for round 17; README.md: how to fetch it); the build stops with a message when that file is missing.  Built as
# emacsglossary, from the manual as info-index's Info parser reads it (info_read_nodes), with build_glossary: one entry
# per node of its chapter "Musical terms A-Z" (the nodes its menu lists; the chapters of duration and pitch names are
# tables, the non-Western terms stubs, not read).  The term is the node's title, above its underline, its section
# number stripped ("accelerando", "alto clef", "dot (augmentation dot)"); the definition is the rest of the node as
# info-index cleans it, without the translations of the term (the paragraph "ES: ..., I: ..., F: ..., D: ...", or its
# list "* UK: quaver", which names the term in other languages and at times in English) and without a "See also"
# heading that lists "No cross-references."; the cross-references (*note X::) stay, as Info writes them, as in
# emacsglossary.  Short definitions: the query is the term as written.  All the kept definitions are the corpus (212);
# a seeded sample of MUSICGLOSSARY_MAX_DOCS would be drawn were more kept.
MUSICGLOSSARY_FILE = "/tmp/lilypond-doc/usr/share/info/music-glossary.info.gz"
MUSICGLOSSARY_CHAPTER = "Musical terms A-Z"
MUSICGLOSSARY_SEED = 20070758
MUSICGLOSSARY_N_QUERIES = 200
MUSICGLOSSARY_MAX_DOCS = 400
MUSICGLOSSARY_DOC_MIN_WORDS = 10   # as the other glossaries': drops "See also *note ornament::." and "Another name for"
MUSICGLOSSARY_TITLE_RE = re.compile(r"^\d+\.\d+\s+(?P<term>\S.*)$")  # "1.3 accelerando"
# the translations: "ES: acento, I: accento, ..." or a list of "* UK: quaver" lines (UK and US: British and American)
MUSICGLOSSARY_TRANSLATIONS_RE = re.compile(r"^(?:\u2022 )?(?:UK|US|ES|I|F|D|NL|DK|S|FI): ")


def info_paragraphs(lines):
    """The paragraphs (runs of non-blank lines) of an Info node's lines, each a list of its lines."""
    paras, cur = [], []
    for line in lines + [""]:
        if line.strip():
            cur.append(line)
        elif cur:
            paras.append(cur)
            cur = []
    return paras


def music_glossary_entries(name, path, chapter=MUSICGLOSSARY_CHAPTER):
    """(term, definition) for every node that the menu of the chapter node ``chapter`` of the Info manual at path
    lists, in the menu's order: the term its title (above its underline), the section number stripped; the definition
    its other paragraphs, the translations (MUSICGLOSSARY_TRANSLATIONS_RE) and a "See also" of "No cross-references."
    dropped, as info-index cleans a node's text (info_clean_text: underlines and image markers dropped), each list
    mark (efaq's) dropped, pyfaq's character map.  The build stops when a node of the menu is missing, has no
    underlined numbered title, or holds the translations anywhere but first."""
    nodes = dict(info_read_nodes([path]))
    if chapter not in nodes:
        sys.exit(f"[{name}] {path}: no node {chapter!r}")
    menu = [m.group(1) for m in (re.match(r"^\* (.+?)::", l) for l in nodes[chapter]) if m]
    entries, n_translations, n_no_refs = [], 0, 0
    for node in menu:
        lines = nodes.get(node)
        if lines is None:
            sys.exit(f"[{name}] {path}: the menu of {chapter!r} lists {node!r}, which is no node")
        k = next((i for i, l in enumerate(lines) if l.strip()), len(lines))
        m = MUSICGLOSSARY_TITLE_RE.match(lines[k].strip()) if k + 1 < len(lines) else None
        if not m or not INFO_UNDERLINE_RE.match(lines[k + 1]):
            sys.exit(f"[{name}] {path}: node {node!r} has no underlined numbered title")
        paras = info_paragraphs(lines[k + 2:])
        if any(MUSICGLOSSARY_TRANSLATIONS_RE.match(para[0].strip()) for para in paras[1:]):
            sys.exit(f"[{name}] {path}: node {node!r} holds translations after its first paragraph")
        if paras and MUSICGLOSSARY_TRANSLATIONS_RE.match(paras[0][0].strip()):
            paras = paras[1:]
            n_translations += 1
        if [norm_ws(" ".join(para)) for para in paras[-2:]] == ["See also ........", "No cross-references."]:
            paras = paras[:-2]
            n_no_refs += 1
        kept = [line for para in paras for line in para + [""]]
        text = info_clean_text([EFAQ_BULLET_RE.sub(r"\1", l) for l in kept]).translate(PYFAQ_UNSMART)
        entries.append((norm_ws(m.group("term")).translate(PYFAQ_UNSMART), text))
    print(f"[{name}] {path}: {len(menu)} nodes in {chapter!r}, {n_translations} with translations (dropped), "
          f"{n_no_refs} with no cross-references (their \"See also\" dropped)", file=sys.stderr)
    return entries


def build_musicglossary():
    path = fetched_file("musicglossary", MUSICGLOSSARY_FILE, "lilypond-doc")
    build_glossary("musicglossary", "musicglossary", "mgl", path, music_glossary_entries("musicglossary", path),
                   MUSICGLOSSARY_SEED, MUSICGLOSSARY_N_QUERIES, MUSICGLOSSARY_DOC_MIN_WORDS, 1,
                   max_docs=MUSICGLOSSARY_MAX_DOCS)


# ---------------------------------------------------------------------------
# 37. pychangelog
# ---------------------------------------------------------------------------
# Python 3.11's changelog entries (whatsnew/changelog.html.gz of Debian's python3.11-doc, the package pyfaq was built
# from, unpacked under /tmp/pyfaq: built blind for round 17; README.md: how to fetch it); the build stops with a message
# when that file is missing.  Short documents and rare-term known-item queries, as debian-packages': every entry (an
# <li> of a section's list) of the releases of Python 3.11 (the <h2>s "Python 3.11.0 alpha 1" ... "Python 3.11.2
# final"; the page's older releases are not read) is one, its text without its issue label ("gh-92173: ", "bpo-32782:
# "), titled with its section ("Library", "Core and Builtins"); a seeded sample of PYCHANGELOG_MAX_DOCS of them is the
# corpus.  The queries are simulated, noise-free: 2 or 3 terms of the entry, drawn with probability proportional to
# their idf from its rare terms (a token as the standard tokenizer cuts it, "socket.getfqdn", "pyeval_evalcodeex",
# lower-cased, of 4+ characters, with a letter, no stopword, in at most PYCHANGELOG_MAX_DF documents), kept when at most
# PYCHANGELOG_MAX_MATCHES documents hold all of them.
PYCHANGELOG_FILE = "/tmp/pyfaq/usr/share/doc/python3.11/html/whatsnew/changelog.html.gz"
PYCHANGELOG_RELEASE_RE = re.compile(r"^Python (?P<version>3\.11\.\d+) (?P<stage>final|alpha|beta|release candidate)"
                                    r"(?: (?P<n>\d+))?$")
PYCHANGELOG_STAGES = {"final": "", "alpha": "a", "beta": "b", "release candidate": "rc"}
PYCHANGELOG_LABEL_RE = re.compile(r"^(?:gh|bpo)-\d+: ")
PYCHANGELOG_SEED = 20070759
PYCHANGELOG_N_QUERIES = 200
PYCHANGELOG_MAX_DOCS = 400
PYCHANGELOG_DOC_MIN_WORDS = 5
PYCHANGELOG_MAX_DF = 5            # as debian-packages'
PYCHANGELOG_MAX_MATCHES = 3       # as debian-packages'
PYCHANGELOG_K_CHOICES = (2, 3)    # as debian-packages'
PYCHANGELOG_TOKEN_RE = re.compile(r"\w+(?:['.]\w+)*")  # as the standard tokenizer (semsearch's QUERY_TOKEN)
PYCHANGELOG_TERM_RE = re.compile(r"[a-z0-9](?:[a-z0-9_.]*[a-z0-9])?")  # no apostrophe, no _ or . at either end


class ChangelogPage(html.parser.HTMLParser):
    """The entries of Sphinx's changelog page: (release, section, text parts) for every top-level <li>, release the
    last <h2> ("Python 3.11.2 final"), section the last <h3> ("Library"); a nested list is text of its entry.  The
    permalink marks (headerlink) are left out."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.entries, self.release, self.section, self.heading, self.item, self.depth, self.skip = \
            [], None, None, None, None, 0, None

    def handle_starttag(self, tag, attrs):
        if self.skip:
            return
        if tag == "a" and "headerlink" in (dict(attrs).get("class") or "").split():
            self.skip = tag
        elif tag in ("h2", "h3"):
            self.heading = (tag, [])
        elif tag == "li":
            self.depth += 1
            if self.depth == 1:
                self.item = []
                self.entries.append((self.release, self.section, self.item))
            else:
                self.item.append(" ")
        elif self.item is not None and tag in PYFAQ_BLOCK_TAGS:
            self.item.append(" ")

    def handle_endtag(self, tag):
        if self.skip:
            self.skip = None if tag == self.skip else self.skip
        elif self.heading and tag == self.heading[0]:
            text = norm_ws("".join(self.heading[1]))
            self.release, self.section = (text, None) if tag == "h2" else (self.release, text)
            self.heading = None
        elif tag == "li" and self.depth:
            self.depth -= 1
            self.item = self.item if self.depth else None
        elif self.item is not None and tag in PYFAQ_BLOCK_TAGS:
            self.item.append(" ")

    def handle_data(self, data):
        if self.skip:
            return
        if self.heading:
            self.heading[1].append(data)
        elif self.item is not None:
            self.item.append(data)


def changelog_entries(name, path):
    """(id, section, text) for every entry of the releases of Python 3.11 on the changelog page at path (gzip), in
    page order: id `RELEASE-NNNN`, the release's version ("3.11.0a1", "3.11.0rc2", "3.11.2") and the entry's place in
    its release (from 0); text the entry's, its issue label (PYCHANGELOG_LABEL_RE) stripped, pyfaq's character map,
    whitespace collapsed.  The build stops when a top-level <li> of such a release is under no <h3>."""
    page = ChangelogPage()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        page.feed(f.read())
    page.close()
    out, places, releases, n_unlabelled = [], collections.Counter(), [], 0
    for release, section, parts in page.entries:
        m = PYCHANGELOG_RELEASE_RE.match(release or "")
        if not m:
            continue
        version = m.group("version") + PYCHANGELOG_STAGES[m.group("stage")] + (m.group("n") or "")
        if section is None:
            sys.exit(f"[{name}] {path}: an entry of {release!r} under no section")
        if version not in places:
            releases.append(version)
        text = norm_ws("".join(parts).translate(PYFAQ_UNSMART))
        n_unlabelled += not PYCHANGELOG_LABEL_RE.match(text)
        out.append((f"{version}-{places[version]:04d}", section, PYCHANGELOG_LABEL_RE.sub("", text)))
        places[version] += 1
    print(f"[{name}] {path}: {len(page.entries)} entries, {len(out)} of the {len(releases)} releases of Python 3.11 "
          f"({releases[-1]} ... {releases[0]}), {n_unlabelled} with no issue label", file=sys.stderr)
    return out


def changelog_terms(text):
    """The tokens of text as the standard tokenizer cuts them (PYCHANGELOG_TOKEN_RE), lower-cased."""
    return PYCHANGELOG_TOKEN_RE.findall(text.lower())


def build_pychangelog():
    """pychangelog's collection: of changelog_entries', those of PYCHANGELOG_DOC_MIN_WORDS+ words, exact duplicates
    (case-insensitive) dropped but the first, a seeded sample (PYCHANGELOG_SEED) of PYCHANGELOG_MAX_DOCS, drawn from
    them sorted by id, is the corpus; its documents visited in a seeded order (PYCHANGELOG_SEED + 1), each gives a
    query of k (2 or 3, drawn) of its rare terms, drawn without replacement with probability proportional to their
    idf, kept when at most PYCHANGELOG_MAX_MATCHES documents hold all k, until PYCHANGELOG_N_QUERIES."""
    path = fetched_file("pychangelog", PYCHANGELOG_FILE, "python3.11-doc")
    items = [(f"pychangelog-{eid}", section, text, None) for eid, section, text in changelog_entries("pychangelog",
                                                                                                     path)]
    kept, n_short, n_dup = kept_texts("pychangelog", items, PYCHANGELOG_DOC_MIN_WORDS, "entry", say_short=False)
    print(f"[pychangelog] {n_short} entries under {PYCHANGELOG_DOC_MIN_WORDS} words, {n_dup} duplicates, "
          f"{len(kept)} kept", file=sys.stderr)
    if len(kept) > PYCHANGELOG_MAX_DOCS:
        kept = sorted(random.Random(PYCHANGELOG_SEED).sample(sorted(kept), PYCHANGELOG_MAX_DOCS))
        print(f"[pychangelog] a seeded sample of {PYCHANGELOG_MAX_DOCS} of them", file=sys.stderr)
    docs = [(doc_id, section, text) for doc_id, section, text, _ in kept]
    docterms = {doc_id: set(changelog_terms(section + " " + text)) for doc_id, section, text in docs}
    df = collections.Counter(t for terms in docterms.values() for t in terms)
    n_docs = len(docs)
    rare = {doc_id: sorted(t for t in set(changelog_terms(text))
                           if len(t) >= 4 and PYCHANGELOG_TERM_RE.fullmatch(t) and re.search(r"[a-z]", t)
                           and t not in STOPWORDS and df[t] <= PYCHANGELOG_MAX_DF)
            for doc_id, _, text in docs}
    rng = random.Random(PYCHANGELOG_SEED + 1)
    order = sorted(rare)
    rng.shuffle(order)
    queries, qrels, n_few, n_matches = [], [], 0, 0
    for doc_id in order:
        if len(queries) >= PYCHANGELOG_N_QUERIES:
            break
        k = rng.choice(PYCHANGELOG_K_CHOICES)
        terms = rare[doc_id]
        if len(terms) < k:
            n_few += 1
            continue
        chosen = weighted_sample(terms, [math.log(n_docs / df[t]) for t in terms], k, rng)
        matches = [d for d, held in docterms.items() if all(t in held for t in chosen)]
        if len(matches) > PYCHANGELOG_MAX_MATCHES:
            n_matches += 1
            continue
        rng.shuffle(chosen)
        qid = f"pcl-q{len(queries):04d}"
        queries.append((qid, " ".join(chosen)))
        qrels.append((qid, doc_id, 1))
    print(f"[pychangelog] {len(docs)} documents; {sum(len(t) >= 2 for t in rare.values())} with 2+ rare terms; "
          f"visited {n_few + n_matches + len(queries)}: {n_few} with fewer rare terms than k, {n_matches} whose terms "
          f"over {PYCHANGELOG_MAX_MATCHES} documents hold, {len(queries)} queries", file=sys.stderr)
    write_collection("pychangelog", docs, queries, qrels)
    print("[pychangelog] " + length_summary(queries, docs, "entry"), file=sys.stderr)


# ---------------------------------------------------------------------------
# 38. pgreference
# ---------------------------------------------------------------------------
# The reference pages of PostgreSQL 15 (every page of the HTML of Debian's postgresql-doc-15 with a NAME line, <div
# class="refnamediv">: the SQL commands, the client and server applications, the SPI functions, ECPG's SQL commands,
# dblink's functions and the additional supplied programs), unpacked under /tmp/pgdoc as pgglossary's: built blind for
# round 18, README.md; the build stops with a message when that folder is missing.  Built as pyfaq, over short
# documents: the query is a page's purpose, as its NAME line gives it ("ABORT --- abort the current transaction":
# "abort the current transaction"), the document the first paragraph of its Description, the name not in the title.
PGREFERENCE_DIR = "/tmp/pgdoc/usr/share/doc/postgresql-doc-15/html"
PGREFERENCE_SEED = 20070761
PGREFERENCE_N_QUERIES = 200
PGREFERENCE_DOC_MIN_WORDS = 10   # as the glossaries'
PGREFERENCE_Q_MIN_WORDS = 2      # as policy's


class RefentryPage(html.parser.HTMLParser):
    """A DocBook XSL reference page: the text of its NAME line (the <p> of <div class="refnamediv">) and, for each <div
    class="refsect1">, its <h2> heading and its paragraphs (its own <p>s, not those of the notes, lists or
    subsections it holds, each a <div>)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.name_line, self.sections, self.divs, self.part = [], [], [], None  # divs: "name", "sect" or None a <div>

    def handle_starttag(self, tag, attrs):
        if tag == "div":
            cls = set((dict(attrs).get("class") or "").split())
            self.divs.append("name" if "refnamediv" in cls else "sect" if "refsect1" in cls else None)
            if self.divs[-1] == "sect":
                self.sections.append(([], []))
        elif self.divs and self.divs[-1] == "name" and tag == "p":
            self.part = self.name_line
        elif self.divs and self.divs[-1] == "sect" and tag in ("h2", "p"):
            heading, paras = self.sections[-1]
            if tag == "p":
                paras.append([])
            self.part = heading if tag == "h2" else paras[-1]
        elif self.part is not None and tag in PYFAQ_BLOCK_TAGS:
            self.part.append(" ")

    def handle_endtag(self, tag):
        if tag == "div" and self.divs:
            self.divs.pop()
        elif tag in ("h2", "p"):
            self.part = None
        elif self.part is not None and tag in PYFAQ_BLOCK_TAGS:
            self.part.append(" ")

    def handle_data(self, data):
        if self.part is not None:
            self.part.append(data)


def pgreference_pages(name, folder):
    """[(page, [(0, purpose, paragraph)])] for every reference page of the folder (a page with a <div
    class="refnamediv">), in name order: page its file's name without .html ("sql-abort"), purpose what its NAME line
    says after the names and their em dash, paragraph the first of its Description (RefentryPage), pyfaq's character
    map, whitespace collapsed.  The build stops when a page has no such NAME line or no one Description with a
    paragraph."""
    pages = []
    plain = lambda parts: norm_ws("".join(parts)).translate(PYFAQ_UNSMART)  # noqa: E731
    for path in sorted(glob.glob(os.path.join(folder, "*.html"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if 'class="refnamediv"' not in text:
            continue
        page = RefentryPage()
        page.feed(text)
        page.close()
        _, dash, purpose = norm_ws("".join(page.name_line)).partition(" \u2014 ")
        described = [paras for heading, paras in page.sections if plain(heading) == "Description"]
        if not dash or len(described) != 1 or not described[0]:
            sys.exit(f"[{name}] {path}: no NAME line with a purpose, or not one Description with a paragraph")
        pages.append((os.path.basename(path)[:-len(".html")],
                      [(0, purpose.translate(PYFAQ_UNSMART), plain(described[0][0]))]))
    print(f"[{name}] {folder}: {len(pages)} reference pages", file=sys.stderr)
    return pages


def build_pgreference():
    if not os.path.isdir(PGREFERENCE_DIR):
        sys.exit(f"[pgreference] no {PGREFERENCE_DIR}: README.md says how to fetch postgresql-doc-15 "
                 "(or build --only another)")
    build_faq("pgreference", "pgr", PGREFERENCE_DIR, pgreference_pages("pgreference", PGREFERENCE_DIR),
              PGREFERENCE_SEED, PGREFERENCE_N_QUERIES, PGREFERENCE_DOC_MIN_WORDS, PGREFERENCE_Q_MIN_WORDS,
              numbered=False)


# ---------------------------------------------------------------------------
# 39. gitconfig
# ---------------------------------------------------------------------------
# Git's configuration variables (the subsection "Variables" of the section "CONFIGURATION FILE" of the man page
# git-config(1) of Debian's git-man, installed here, as gitglossary's page: built blind for round 18, README.md); the
# build stops with a message when that page is missing.  Built as gitglossary, from the page as man_render renders it:
# a line at the subsection's least indent that names variables ("core.autocrlf", "format.to, format.cc",
# "pack.writeBitmaps (deprecated)") is a term, the deeper lines below it its description (the nested lists of advice.*'s
# keys included); the other lines at that indent are notes between the entries ("All gitcvs variables
# except ..."), dropped.  A seeded sample of GITCONFIG_MAX_DOCS of the entries is the corpus; the query is one
# variable's name as written ("core.autocrlf", "http.sslVerify"), of a term naming one with no placeholder or wildcard
# ("branch.<name>.remote", "advice.*": their documents with no query).
GITCONFIG_FILE = "/usr/share/man/man1/git-config.1.gz"
GITCONFIG_SEED = 20070762
GITCONFIG_N_QUERIES = 200
GITCONFIG_MAX_DOCS = 400
GITCONFIG_DOC_MIN_WORDS = 10   # as gitglossary's
GITCONFIG_NAME = r"[A-Za-z0-9_.*<>-]+"
GITCONFIG_TERM_RE = re.compile(rf"{GITCONFIG_NAME}(?:, {GITCONFIG_NAME})*(?: \(deprecated\))?")
GITCONFIG_QUERY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z][A-Za-z0-9_-]*)+")  # "core.autocrlf"


def gitconfig_entries(name, path):
    """(term, description) for every entry of git-config(1)'s list of variables, its terms (the lines of
    GITCONFIG_TERM_RE in a row at the list's least indent) joined by ", ", as indented_glossary_entries reads it;
    each other line at that indent (a note between the entries) is dropped and said on stderr."""
    lines = man_section_lines(name, path, "CONFIGURATION FILE", "Variables")
    term_indent = min(indent for indent, _ in lines)
    notes = [text for indent, text in lines if indent == term_indent and not GITCONFIG_TERM_RE.fullmatch(text)]
    for text in notes:
        print(f"[{name}] a note, not a term, dropped: {text[:70]!r}...", file=sys.stderr)
    entries = indented_glossary_entries(name, path, [(indent, text) for indent, text in lines
                                                     if indent > term_indent or GITCONFIG_TERM_RE.fullmatch(text)])
    print(f"[{name}] {path}: {len(entries)} entries of variables, {len(notes)} notes dropped", file=sys.stderr)
    return [(", ".join(terms), text) for terms, text in entries]


def build_gitconfig():
    build_settings("gitconfig", "gcf", GITCONFIG_FILE, "install Debian's git-man", gitconfig_entries, GITCONFIG_SEED,
                   GITCONFIG_N_QUERIES, GITCONFIG_DOC_MIN_WORDS, GITCONFIG_MAX_DOCS, GITCONFIG_QUERY_RE,
                   spell_clashes=True)


def build_settings(name, query_prefix, source, how, read, seed, n_queries, doc_min_words, max_docs, query_re,
                   spell_clashes=False):
    """gitconfig's (and pgconfig's and vimoptions') collection: build_glossary over read(name, source)'s entries
    (term, description), the query one setting's name (a term of the form query_re), the documents a seeded sample
    of max_docs of the descriptions where more are kept; the build stops with a message (how to get it) when source
    is missing."""
    if not os.path.exists(source):
        sys.exit(f"[{name}] no {source}: {how} (README.md; or build --only another)")
    build_glossary(name, name, query_prefix, source, read(name, source), seed, n_queries, doc_min_words, 1,
                   max_docs=max_docs, spell_clashes=spell_clashes, what="description", query_re=query_re)


# ---------------------------------------------------------------------------
# 40. pgconfig
# ---------------------------------------------------------------------------
# PostgreSQL 15's server configuration parameters (chapter 20, "Server Configuration": the pages runtime-config-*.html
# of the HTML of Debian's postgresql-doc-15, unpacked under /tmp/pgdoc as pgglossary's and pgreference's: built blind
# for round 19, README.md); the build stops with a message when that folder is missing.  Built as gitconfig, with
# build_glossary: each entry of a page's lists of parameters (<dl class="variablelist">, DocBook XSL) is a term, its
# <dt> ("work_mem (integer)": the names of the parameters without their types, several joined by ", "), and the first
# paragraph of its <dd> (its description's first <p>: the whole description averages about 100 words, this about 60);
# the query is one parameter's name as written ("work_mem", "DateStyle").
PGCONFIG_DIR = PGREFERENCE_DIR
PGCONFIG_SEED = 20070763
PGCONFIG_N_QUERIES = 200
PGCONFIG_MAX_DOCS = 450
PGCONFIG_DOC_MIN_WORDS = 10   # as gitconfig's
PGCONFIG_TYPED_RE = re.compile(r"(?:\S+ \([a-z_ ]+\) ?)+")  # "work_mem (integer)", "debug_print_parse (boolean) ..."
PGCONFIG_QUERY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # "work_mem", "DateStyle"


class VariablelistPage(GlossaryPage):
    """GlossaryPage for DocBook XSL's lists of variables (each <dl class="variablelist"> not inside another), with only
    the first paragraph of each definition: the text of its <dd> up to the end of its first <p> (every <dd> opens with
    one), not the paragraphs, notes and nested lists after it."""

    def handle_starttag(self, tag, attrs):
        if tag == "dl" and not self.depth and "variablelist" in (dict(attrs).get("class") or "").split():
            attrs = [("class", "glossary")]
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "p" and self.depth == 1 and self.entries and self.part is self.entries[-1]["text"]:
            self.part = None  # the rest of the <dd> is not read
        else:
            super().handle_endtag(tag)


def pgconfig_entries(name, folder):
    """(term, paragraph) for every entry of the lists of parameters of the pages runtime-config-*.html of folder, in
    file-name order, read with VariablelistPage: a term its parameters' names without their types ("work_mem",
    "debug_print_parse, debug_print_rewritten, debug_print_plan"), or the <dt> as written where it is not of that form
    ("recovery_target = 'immediate'")."""
    entries, per_page = [], collections.Counter()
    for path in sorted(glob.glob(os.path.join(folder, "runtime-config-*.html"))):
        for term, text in html_glossary_entries(name, path, VariablelistPage):
            if PGCONFIG_TYPED_RE.fullmatch(term):
                term = ", ".join(re.findall(r"(\S+) \([a-z_ ]+\)", term))
            entries.append((term, text))
            per_page[os.path.basename(path)[len("runtime-config-"):-len(".html")]] += 1
    print(f"[{name}] {folder}: {len(entries)} entries of parameters, " + ", ".join(
        f"{page} {n}" for page, n in per_page.most_common()), file=sys.stderr)
    return entries


def build_pgconfig():
    build_settings("pgconfig", "pgc", PGCONFIG_DIR, "fetch and unpack postgresql-doc-15", pgconfig_entries,
                   PGCONFIG_SEED, PGCONFIG_N_QUERIES, PGCONFIG_DOC_MIN_WORDS, PGCONFIG_MAX_DOCS, PGCONFIG_QUERY_RE)


# ---------------------------------------------------------------------------
# 41. vimoptions
# ---------------------------------------------------------------------------
# Vim's options (the help file options.txt of Debian's vim-runtime, installed here: built blind for round 19,
# README.md); the build stops with a message when that file is missing.  Built as gitconfig, with build_glossary: an
# option's header line ("'autoindent' 'ai'\tboolean\t(default off)") is a term, its name ("autoindent"; several where
# headers follow each other with no text between, as 'timeout' and 'ttimeout'), and the first paragraph of its text is
# its description: the lines indented by one tab after the header's (the scope and availability lines, indented by
# three, are not read) up to a blank line, a line indented otherwise or holding a tab (a table, an example, a tag) or
# the start of an example (a line ending in ">", the mark dropped), its links' bars dropped ("|+rightleft|":
# "+rightleft"), as Vim shows them.  The query is one option's name as written, without the quotes of the help's
# notation.
VIMOPTIONS_FILE = "/usr/share/vim/vim90/doc/options.txt"
VIMOPTIONS_SEED = 20070764
VIMOPTIONS_N_QUERIES = 200
VIMOPTIONS_MAX_DOCS = 450
VIMOPTIONS_DOC_MIN_WORDS = 10   # as gitconfig's
VIMOPTIONS_HEADER_RE = re.compile(r"'(?P<name>[a-z][a-z0-9]*)'(?: '[a-z0-9]+')*\s+(?:boolean|number|string)\b")
VIMOPTIONS_TEXT_RE = re.compile(r"\t(?P<text>[^\t ][^\t]*)")  # a line of text: one tab, then no other (a table's)
VIMOPTIONS_EXAMPLE_RE = re.compile(r"(?:^|\s)>$")  # a line that starts an example
VIMOPTIONS_LINK_RE = re.compile(r"\|([^|\s]+)\|")  # "|+rightleft|"
VIMOPTIONS_QUERY_RE = re.compile(r"[a-z][a-z0-9]*")


def vim_option_entries(name, path):
    """(names, paragraph) for every option of Vim's options.txt, in the file's order: names the header lines' option
    names joined by ", " (the headers in a row before a line of text), paragraph the first paragraph of its text, as
    the section's comment above says, whitespace collapsed."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    entries = []  # [names, paragraph lines, paragraph ended]
    for line in lines:
        header, text = VIMOPTIONS_HEADER_RE.match(line), VIMOPTIONS_TEXT_RE.fullmatch(line)
        if header and entries and not entries[-1][1]:
            entries[-1][0].append(header.group("name"))
        elif header:
            entries.append([[header.group("name")], [], False])
        elif entries and not entries[-1][2] and (entries[-1][1] or text):
            if text and VIMOPTIONS_EXAMPLE_RE.search(text.group("text")):
                entries[-1][1].append(VIMOPTIONS_EXAMPLE_RE.sub("", text.group("text")))
            elif text:
                entries[-1][1].append(text.group("text"))
            entries[-1][2] = not text or VIMOPTIONS_EXAMPLE_RE.search(text.group("text")) is not None
    if not entries or any(not paragraph for _, paragraph, _ in entries):
        sys.exit(f"[{name}] {path}: no options, or an option with no line of text")
    n_names = sum(len(names) for names, _, _ in entries)
    print(f"[{name}] {path}: {n_names} options in {len(entries)} entries", file=sys.stderr)
    return [(", ".join(names), VIMOPTIONS_LINK_RE.sub(r"\1", norm_ws(" ".join(paragraph))))
            for names, paragraph, _ in entries]


def build_vimoptions():
    build_settings("vimoptions", "vim", VIMOPTIONS_FILE, "install Debian's vim-runtime", vim_option_entries,
                   VIMOPTIONS_SEED, VIMOPTIONS_N_QUERIES, VIMOPTIONS_DOC_MIN_WORDS, VIMOPTIONS_MAX_DOCS,
                   VIMOPTIONS_QUERY_RE)


BUILDERS = {"manpages": build_manpages, "debian-packages": build_debian, "pydoc": build_pydoc,
            "info-index": build_info_index, "perldiag": build_perldiag, "info-extra": build_info_extra,
            "perlfaq": build_perlfaq, "pyfaq": build_pyfaq, "debfaq": build_debfaq, "efaq": build_efaq,
            "zshfaq": build_zshfaq, "fetchfaq": build_fetchfaq, "rfaq": build_rfaq, "policy": build_policy,
            "devref": build_devref, "pyglossary": build_pyglossary, "gitglossary": build_gitglossary,
            "pgglossary": build_pgglossary, "debref": build_debref, "perlglossary": build_perlglossary,
            "emacsglossary": build_emacsglossary, "jargon": build_jargon, "foldoc": build_foldoc,
            "devil": build_devil, "mannames": build_mannames, "pymodules": build_pymodules, "wordnet": build_wordnet,
            "gitcommands": build_gitcommands, "perlfunc": build_perlfunc, "perlmods": build_perlmods,
            "debsynopsis": build_debsynopsis, "cfuncs": build_cfuncs, "vera": build_vera, "syscalls": build_syscalls,
            "pyhowto": build_pyhowto, "musicglossary": build_musicglossary, "pychangelog": build_pychangelog,
            "pgreference": build_pgreference, "gitconfig": build_gitconfig, "pgconfig": build_pgconfig,
            "vimoptions": build_vimoptions}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=COLLECTIONS, help="build only this collection (info-extra, perlfaq, pyfaq, "
                                                         "debfaq, efaq, zshfaq, fetchfaq, rfaq, policy, devref, "
                                                         "pyglossary, pgglossary, debref, perlglossary, "
                                                         "emacsglossary, jargon, foldoc, devil, pymodules, "
                                                         "wordnet, perlfunc, vera, pyhowto, musicglossary, "
                                                         "pychangelog, pgreference, pgconfig and, where "
                                                         "perl-modules-5.36 is not installed, perlmods need the "
                                                         "packages README.md says to unpack under /tmp)")
    ap.add_argument("--all-queries", action="store_true",
                    help="every eligible query instead of the sample (on the same machine state the corpus is the "
                         "same): for measuring with less noise; needs --out, as the committed collections hold the "
                         "samples")
    ap.add_argument("--out", default=HERE, help="write the collections under this folder (default: beside this script)")
    args = ap.parse_args()
    if args.all_queries and os.path.abspath(args.out) == HERE:
        ap.error("--all-queries writes other query sets than the committed samples: give it --out DIR")
    global OUT, MAN_N_QUERIES, DEB_N_QUERIES, PY_N_QUERIES, INFO_N_QUERIES, PERLDIAG_N_QUERIES, PERLFAQ_N_QUERIES, \
        PYFAQ_N_QUERIES, DEBFAQ_N_QUERIES, EFAQ_N_QUERIES, ZSHFAQ_N_QUERIES, FETCHFAQ_N_QUERIES, RFAQ_N_QUERIES, \
        POLICY_N_QUERIES, DEVREF_N_QUERIES, PYGLOSSARY_N_QUERIES, GITGLOSSARY_N_QUERIES, \
        PGGLOSSARY_N_QUERIES, DEBREF_N_QUERIES, PERLGLOSSARY_N_QUERIES, EMACSGLOSSARY_N_QUERIES, JARGON_N_QUERIES, \
        FOLDOC_N_QUERIES, DEVIL_N_QUERIES, MANNAMES_N_QUERIES, PYMODULES_N_QUERIES, WORDNET_N_QUERIES, \
        GITCOMMANDS_N_QUERIES, PERLFUNC_N_QUERIES, PERLMODS_N_QUERIES, DEBSYNOPSIS_N_QUERIES, CFUNCS_N_QUERIES, \
        VERA_N_QUERIES, SYSCALLS_N_QUERIES, PYHOWTO_N_QUERIES, MUSICGLOSSARY_N_QUERIES, PYCHANGELOG_N_QUERIES, \
        PGREFERENCE_N_QUERIES, GITCONFIG_N_QUERIES, PGCONFIG_N_QUERIES, VIMOPTIONS_N_QUERIES
    OUT = args.out
    if args.all_queries:
        MAN_N_QUERIES = DEB_N_QUERIES = PY_N_QUERIES = INFO_N_QUERIES = PERLDIAG_N_QUERIES = PERLFAQ_N_QUERIES = \
            PYFAQ_N_QUERIES = DEBFAQ_N_QUERIES = EFAQ_N_QUERIES = ZSHFAQ_N_QUERIES = FETCHFAQ_N_QUERIES = \
            RFAQ_N_QUERIES = POLICY_N_QUERIES = DEVREF_N_QUERIES = PYGLOSSARY_N_QUERIES = GITGLOSSARY_N_QUERIES = \
            PGGLOSSARY_N_QUERIES = DEBREF_N_QUERIES = PERLGLOSSARY_N_QUERIES = EMACSGLOSSARY_N_QUERIES = \
            JARGON_N_QUERIES = FOLDOC_N_QUERIES = DEVIL_N_QUERIES = MANNAMES_N_QUERIES = PYMODULES_N_QUERIES = \
            WORDNET_N_QUERIES = GITCOMMANDS_N_QUERIES = PERLFUNC_N_QUERIES = PERLMODS_N_QUERIES = \
            DEBSYNOPSIS_N_QUERIES = CFUNCS_N_QUERIES = VERA_N_QUERIES = SYSCALLS_N_QUERIES = PYHOWTO_N_QUERIES = \
            MUSICGLOSSARY_N_QUERIES = PYCHANGELOG_N_QUERIES = PGREFERENCE_N_QUERIES = GITCONFIG_N_QUERIES = \
            PGCONFIG_N_QUERIES = VIMOPTIONS_N_QUERIES = sys.maxsize
    for name in COLLECTIONS:
        if args.only and name != args.only:
            continue
        t0 = time.time()
        BUILDERS[name]()
        print(f"[{name}] built in {time.time() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
