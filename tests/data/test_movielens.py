"""MovieLens loaders: every GroupLens layout, zip vs folder, and every kind of bad input.

The tiny releases below are written in each release's exact layout (separators, encodings,
header rows, folder names inside the zip, CRLF line ends); the real ml-100k and ml-latest-small
zips from ``../shared/data/movielens`` are used when present.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from tastespace.data import load_dataset
from tastespace.data.movielens import detect_release, is_movielens, load_movielens
from tastespace.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "movielens"


# -- tiny releases in their exact layouts ----------------------------------------------------

ML1M = {  # ml-1m.zip -> ml-1m/, '::' separated, latin-1
    "README": b"SUMMARY\n",
    "ratings.dat": (
        b"1::1193::5::978300760\n"
        b"1::661::3::978302109\n"
        b"1::914::3::978301968\n"
        b"2::1193::4::978298413\n"
        b"2::73::5::978300000\n"
        b"3::661::2::978297039\n"
    ),
    "movies.dat": (
        "73::Misérables, Les (1995)::Drama|War\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "914::My Fair Lady (1964)::Musical|Romance\n"
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "3952::Contender, The (2000)::Drama|Thriller\n"
    ).encode("latin-1"),
    "users.dat": b"1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n",
}

ML10M = {  # ml-10m.zip -> ml-10M100K/, '::' separated, UTF-8, half stars, tags
    "README.html": b"<html></html>\n",
    "allbut.pl": b"#!/usr/bin/perl\n",
    "split_ratings.sh": b"#!/bin/sh\n",
    "ratings.dat": (
        b"1::122::5::838985046\n"
        b"1::185::4.5::838983525\n"
        b"2::122::3.5::838983392\n"
        b"2::292::0.5::838983421\n"
        b"3::4973::4::838983500\n"
    ),
    "movies.dat": (
        "122::Boomerang (1992)::Comedy|Romance\n"
        "185::Net, The (1995)::Action|Crime|Thriller\n"
        "292::Outbreak (1995)::Action|Drama|Sci-Fi|Thriller\n"
        "4973::Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)::Comedy|Romance\n"
        "8606::Pull My Daisy (1958)::(no genres listed)\n"
    ).encode(),
    "tags.dat": (
        b"15::4973::Paris::1215184630\n"
        b"20::122::dark humor::1188263867\n"
        b"21::122::Dark Humor ::1188263880\n"
        b"22::185::   ::1188263881\n"
        b"25::185::hacker::1188263882\n"
        b"26::99999::orphan::1188263883\n"
        b"27::292::virus::outbreak::1188263884\n"
    ),
}


def csv_release(crlf: bool = False) -> dict[str, bytes]:
    """ml-20m / ml-25m / ml-32m / ml-latest layout: UTF-8 CSV with headers and quoted titles."""
    files = {
        "ratings.csv": (
            "userId,movieId,rating,timestamp\n"
            "1,1,4.0,1112486027\n"
            "1,29,3.5,1112484676\n"
            "2,1,5.0,974820889\n"
            "2,11,0.5,974820890\n"
            "3,29,4.5,1112484677\n"
        ),
        "movies.csv": (
            "movieId,title,genres\n"
            "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
            '11,"American President, The (1995)",Comedy|Drama|Romance\n'
            '29,"City of Lost Children, The (Cité des enfants perdus, La) (1995)",'
            "Adventure|Drama|Fantasy|Mystery|Sci-Fi\n"
            '27002,"""Great Performances"" Cats (1998)",Musical\n'
            "147250,Babylon 5,(no genres listed)\n"
        ),
        "tags.csv": (
            "userId,movieId,tag,timestamp\n"
            "18,1,Pixar,1240597180\n"
            "65,1,pixar,1368150078\n"
            '65,29,"dark, surreal",1368149983\n'
        ),
        "links.csv": "movieId,imdbId,tmdbId\n1,0114709,862\n11,0112346,9087\n29,0112682,902\n",
        "README.txt": "Summary\n",
    }
    newline = "\r\n" if crlf else "\n"
    return {k: v.replace("\n", newline).encode("utf-8") for k, v in files.items()}


def write_release(
    root: Path, folder: str, files: dict[str, bytes], *, as_zip: bool, zip_name: str = ""
) -> Path:
    """Write ``files`` as ``root/<zip_name or folder>.zip`` holding ``folder/`` or as a folder."""
    root.mkdir(parents=True, exist_ok=True)
    if as_zip:
        path = root / f"{zip_name or folder}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{folder}/", b"")
            for name, data in files.items():
                archive.writestr(f"{folder}/{name}", data)
        return path
    path = root / folder
    path.mkdir()
    for name, data in files.items():
        (path / name).write_bytes(data)
    return path


def assert_same(a, b) -> None:
    """Two datasets hold the same interactions, ids, timestamps and features."""
    assert a.name == b.name
    assert (a.interactions != b.interactions).nnz == 0
    assert a.interactions.shape == b.interactions.shape
    np.testing.assert_array_equal(a.item_ids.ids, b.item_ids.ids)
    np.testing.assert_array_equal(a.user_ids.ids, b.user_ids.ids)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert a.items.frame.equals(b.items.frame)
    assert a.users.frame.equals(b.users.frame)
    assert set(a.items.bags) == set(b.items.bags)
    for name, bag in a.items.bags.items():
        assert bag.vocab == b.items.bags[name].vocab
        np.testing.assert_array_equal(bag.indices, b.items.bags[name].indices)
        np.testing.assert_array_equal(bag.offsets, b.items.bags[name].offsets)


def item(ds, raw_id: int) -> int:
    return ds.item_ids.index(raw_id)


# -- ml-1m -----------------------------------------------------------------------------------


@pytest.mark.parametrize("as_zip", [True, False], ids=["zip", "folder"])
def test_ml1m_layout(tmp_path: Path, as_zip: bool) -> None:
    path = write_release(tmp_path, "ml-1m", ML1M, as_zip=as_zip)
    assert is_movielens(path)
    assert detect_release(path) == "ml-1m"
    ds = load_movielens(path)
    assert (ds.name, ds.n_users, ds.n_items, ds.n_interactions) == ("ml-1m", 3, 5, 6)
    # the catalog in file order, the unrated movie included
    assert ds.item_ids.ids.tolist() == [73, 661, 914, 1193, 3952]
    frame = ds.items.frame
    assert frame["title"][item(ds, 73)] == "Misérables, Les (1995)"  # latin-1 decoded
    assert frame["year"][item(ds, 914)] == 1964
    assert np.isnan(frame["mean_rating"][item(ds, 3952)])
    assert frame["log_popularity"][item(ds, 3952)] == 0
    assert frame["mean_rating"][item(ds, 1193)] == pytest.approx(4.5)
    assert frame["log_popularity"][item(ds, 661)] == pytest.approx(np.log1p(2))
    assert ds.items.bags["genres"].row(item(ds, 661)) == ["Animation", "Children's", "Musical"]
    assert "tags" not in ds.items.bags
    users = ds.users.frame
    assert ds.user_ids.ids.tolist() == [1, 2, 3]
    assert users["occupation"].tolist() == ["K-12 student", "self-employed", "scientist"]
    assert users["age"].tolist() == [1, 56, 25]  # the bucket code
    assert users["gender"].tolist() == ["F", "M", "M"]
    assert users["zip_code"].tolist() == ["48067", "70072", "55117"]
    assert ds.interactions[ds.user_ids.index(2), item(ds, 73)] == 5
    assert ds.timestamps is not None and ds.timestamps.dtype == np.int64
    assert ds.provenance["release"] == "ml-1m" and ds.provenance["source"] == str(path)


def test_ml1m_zip_and_folder_agree(tmp_path: Path) -> None:
    zipped = load_movielens(write_release(tmp_path / "z", "ml-1m", ML1M, as_zip=True))
    folder = load_movielens(write_release(tmp_path / "f", "ml-1m", ML1M, as_zip=False))
    assert_same(zipped, folder)


def test_min_rating_binarises(tmp_path: Path) -> None:
    ds = load_movielens(write_release(tmp_path, "ml-1m", ML1M, as_zip=True), min_rating=4)
    assert ds.n_interactions == 3
    assert set(ds.interactions.data.tolist()) == {1.0}
    assert ds.provenance["filtered"] == {"rating < 4": 3}
    # features still describe every rating, not just the kept ones
    assert ds.items.frame["mean_rating"][item(ds, 661)] == pytest.approx(2.5)


@pytest.mark.fault(
    "movielens", "--min-rating above every MovieLens rating", "DataError: no interactions left"
)
def test_min_rating_leaving_nothing_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no interactions left"):
        load_movielens(write_release(tmp_path, "ml-1m", ML1M, as_zip=True), min_rating=6)


def test_duplicates_policy_is_passed_through(tmp_path: Path) -> None:
    files = dict(ML1M, **{"ratings.dat": ML1M["ratings.dat"] + b"1::1193::1::978300999\n"})
    path = write_release(tmp_path, "ml-1m", files, as_zip=True)
    assert load_movielens(path).interactions[0, 3] == 1  # "last" by default
    assert load_movielens(path, duplicates="max").interactions[0, 3] == 5
    with pytest.raises(DataError, match="duplicate"):
        load_movielens(path, duplicates="error")


# -- ml-10m ----------------------------------------------------------------------------------


@pytest.mark.parametrize("as_zip", [True, False], ids=["zip", "folder"])
def test_ml10m_layout(tmp_path: Path, as_zip: bool) -> None:
    path = write_release(tmp_path, "ml-10M100K", ML10M, as_zip=as_zip, zip_name="ml-10m")
    assert is_movielens(path)
    assert detect_release(path) == "ml-10m"
    ds = load_movielens(path)
    assert (ds.name, ds.n_users, ds.n_items, ds.n_interactions) == ("ml-10m", 3, 5, 5)
    assert sorted(set(ds.interactions.data.tolist())) == [0.5, 3.5, 4.0, 4.5, 5.0]
    frame = ds.items.frame
    assert frame["title"][item(ds, 4973)].startswith("Amélie")  # UTF-8 decoded
    assert frame["year"][item(ds, 4973)] == 2001
    genres = ds.items.bags["genres"]
    assert genres.row(item(ds, 8606)) == []  # "(no genres listed)"
    assert "(no genres listed)" not in genres.vocab
    tags = ds.items.bags["tags"]
    assert tags.row(item(ds, 122)) == ["dark humor"]  # lower-cased, stripped, distinct
    assert tags.row(item(ds, 185)) == ["hacker"]  # the blank tag is dropped
    assert tags.row(item(ds, 292)) == ["virus::outbreak"]  # a tag holding the separator
    assert tags.row(item(ds, 4973)) == ["paris"]
    notes = ds.provenance["notes"]
    assert any("tags.dat: 1 tag rows name movies not in the catalog" in n for n in notes)
    assert ds.users.frame.shape[1] == 0  # ml-10m has no user file


# -- the CSV releases ------------------------------------------------------------------------


@pytest.mark.parametrize("release", ["ml-20m", "ml-25m", "ml-32m", "ml-latest"])
@pytest.mark.parametrize("as_zip", [True, False], ids=["zip", "folder"])
def test_csv_layouts(tmp_path: Path, release: str, as_zip: bool) -> None:
    files = csv_release()
    if release == "ml-32m":
        files["checksums.txt"] = b"0123  ratings.csv\n"
    if release in ("ml-20m", "ml-25m", "ml-latest"):
        files["genome-tags.csv"] = b"tagId,tag\n1,007\n"
        files["genome-scores.csv"] = b"movieId,tagId,relevance\n1,1,0.0287\n"
    path = write_release(tmp_path, release, files, as_zip=as_zip)
    assert is_movielens(path)
    assert detect_release(path) == release
    ds = load_movielens(path)
    assert (ds.name, ds.n_users, ds.n_items, ds.n_interactions) == (release, 3, 5, 5)
    frame = ds.items.frame
    assert frame["title"].tolist() == [
        "Toy Story (1995)",
        "American President, The (1995)",
        "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
        '"Great Performances" Cats (1998)',
        "Babylon 5",
    ]
    assert frame["year"].tolist()[:4] == [1995, 1995, 1995, 1998]
    assert np.isnan(frame["year"][4])
    assert ds.items.bags["genres"].row(item(ds, 11)) == ["Comedy", "Drama", "Romance"]
    assert ds.items.bags["genres"].row(item(ds, 147250)) == []
    assert ds.items.bags["tags"].row(item(ds, 1)) == ["pixar"]
    assert ds.items.bags["tags"].row(item(ds, 29)) == ["dark, surreal"]
    assert ds.items.frame["mean_rating"][item(ds, 29)] == pytest.approx(4.0)
    assert ds.interactions.dtype == np.float32


def test_csv_crlf_line_endings(tmp_path: Path) -> None:
    lf = load_movielens(
        write_release(tmp_path / "a", "ml-latest-small", csv_release(), as_zip=True)
    )
    crlf = load_movielens(
        write_release(tmp_path / "b", "ml-latest-small", csv_release(crlf=True), as_zip=True)
    )
    assert crlf.name == "ml-latest-small"
    assert_same(lf, crlf)
    assert not any(t.endswith("\r") for t in crlf.items.frame["title"])
    assert "Fantasy" in crlf.items.bags["genres"].row(0)  # last genre, right before the CRLF


def test_unrecognised_csv_folder_name_is_reported_as_ml_latest(tmp_path: Path) -> None:
    path = write_release(tmp_path, "movielens", csv_release(), as_zip=False)
    assert detect_release(path) == "ml-latest"
    ds = load_movielens(path)
    assert any("unrecognised folder name" in n for n in ds.provenance["notes"])


# -- detection and locating the release -----------------------------------------------------


def test_parent_folder_holding_one_release(tmp_path: Path) -> None:
    write_release(tmp_path / "datasets", "ml-1m", ML1M, as_zip=False)
    parent = tmp_path / "datasets"
    assert is_movielens(parent)
    assert detect_release(parent) == "ml-1m"
    assert load_movielens(parent).n_interactions == 6


@pytest.mark.fault(
    "movielens", "a folder holding two MovieLens releases", "DataError naming both releases"
)
def test_parent_folder_holding_two_releases_names_them(tmp_path: Path) -> None:
    write_release(tmp_path / "datasets", "ml-1m", ML1M, as_zip=False)
    write_release(tmp_path / "datasets", "ml-20m", csv_release(), as_zip=False)
    assert is_movielens(tmp_path / "datasets")  # so load_dataset hands it to this loader
    with pytest.raises(DataError, match=r"holds 2 MovieLens releases.*ml-1m.*ml-20m"):
        load_dataset(tmp_path / "datasets")


def test_layout_beats_folder_name(tmp_path: Path) -> None:
    # ml-1m files in a folder named like ml-10m: users.dat makes it ml-1m
    path = write_release(tmp_path, "ml-10M100K", ML1M, as_zip=True)
    assert detect_release(path) == "ml-1m"


def test_load_dataset_dispatches_to_movielens(tmp_path: Path) -> None:
    ds = load_dataset(write_release(tmp_path, "ml-1m", ML1M, as_zip=True), min_rating=4)
    assert ds.name == "ml-1m" and ds.n_interactions == 3


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.fault(
    "movielens",
    "ratings.dat line with 3 fields",
    "DataError naming zip:member, line and field counts",
)
def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    bad = ML1M["ratings.dat"].replace(b"1::914::3::978301968", b"1::914::3")
    path = write_release(tmp_path, "ml-1m", dict(ML1M, **{"ratings.dat": bad}), as_zip=True)
    with pytest.raises(DataError) as err:
        load_movielens(path)
    message = str(err.value)
    assert "ml-1m.zip:ml-1m/ratings.dat" in message
    assert "line 3" in message and "expected 4 fields" in message and "found 3" in message


@pytest.mark.fault(
    "movielens",
    "ratings.csv line with 3 fields",
    "DataError naming member and line (header counted)",
)
def test_malformed_csv_line_counts_the_header(tmp_path: Path) -> None:
    files = csv_release()
    files["ratings.csv"] = files["ratings.csv"].replace(b"2,1,5.0,974820889", b"2,1,5.0")
    path = write_release(tmp_path, "ml-25m", files, as_zip=False)
    with pytest.raises(DataError, match=r"ratings\.csv, line 4: expected 4 fields"):
        load_movielens(path)


@pytest.mark.fault(
    "movielens",
    "non-numeric or empty rating in a release",
    "DataError naming zip:member and line: rating must be a number",
)
@pytest.mark.parametrize(
    ("release", "folder", "files", "member", "old", "new", "line"),
    [
        ("ml-1m", "ml-1m", ML1M, "ratings.dat", b"2::73::5::", b"2::73::five::", 5),
        ("ml-10m", "ml-10M100K", ML10M, "ratings.dat", b"2::292::0.5::", b"2::292::::", 4),
        ("ml-20m", "ml-20m", csv_release(), "ratings.csv", b"1,29,3.5,", b"1,29,n/a,", 3),
        ("ml-32m", "ml-32m", csv_release(), "ratings.csv", b"1,29,3.5,", b"1,29,nan,", 3),
    ],
)
def test_non_numeric_rating(tmp_path: Path, release, folder, files, member, old, new, line) -> None:
    changed = dict(files, **{member: files[member].replace(old, new)})
    path = write_release(tmp_path, folder, changed, as_zip=True, zip_name=release)
    with pytest.raises(DataError) as err:
        load_movielens(path)
    message = str(err.value)
    assert f"{release}.zip:{folder}/{member}, line {line}: rating must be a number" in message


@pytest.mark.fault(
    "movielens", "a non-integer UserID in ratings.dat", "DataError naming member and line"
)
def test_non_integer_id(tmp_path: Path) -> None:
    bad = ML1M["ratings.dat"].replace(b"3::661::", b"x3::661::")
    path = write_release(tmp_path, "ml-1m", dict(ML1M, **{"ratings.dat": bad}), as_zip=False)
    with pytest.raises(DataError, match=r"ratings\.dat, line 6: UserID must be an integer"):
        load_movielens(path)


@pytest.mark.fault(
    "movielens", "a release zip missing users/movies file", "DataError naming the missing member"
)
@pytest.mark.parametrize(
    ("folder", "files", "missing"),
    [
        ("ml-1m", ML1M, "users.dat"),
        ("ml-1m", ML1M, "movies.dat"),
        ("ml-20m", csv_release(), "movies.csv"),
    ],
)
def test_missing_member_is_named(tmp_path: Path, folder, files, missing) -> None:
    files = {k: v for k, v in files.items() if k != missing}
    path = write_release(tmp_path, folder, files, as_zip=True)
    assert is_movielens(path)  # named like a release, so the loader explains the problem
    with pytest.raises(DataError, match=rf"{folder}\.zip:{folder}/{missing}: file missing"):
        load_movielens(path)


@pytest.mark.fault(
    "movielens", "ml-100k zip without u.item", "DataError naming ml-100k/u.item: file missing"
)
def test_ml100k_missing_u_item(tmp_path: Path) -> None:
    files = {"u.data": b"1\t1\t5\t881250949\n", "u.user": b"1|24|M|technician|85711\n"}
    path = write_release(tmp_path, "ml-100k", files, as_zip=True)
    with pytest.raises(DataError, match=r"ml-100k/u\.item: file missing"):
        load_movielens(path)


@pytest.mark.fault(
    "movielens",
    "Latin-1 bytes in a UTF-8 release member",
    "DataError naming member and line: not valid UTF-8",
)
@pytest.mark.parametrize(
    ("folder", "files", "member", "line"),
    [
        ("ml-10M100K", ML10M, "movies.dat", 4),  # small file, read whole
        ("ml-10M100K", ML10M, "tags.dat", 1),
        ("ml-25m", csv_release(), "movies.csv", 4),
        ("ml-25m", csv_release(), "tags.csv", 4),  # large-file path (pyarrow), then diagnosed
    ],
)
def test_latin1_where_utf8_is_expected(tmp_path: Path, folder, files, member, line) -> None:
    text = files[member].decode("utf-8")
    text = text.replace("Amélie", "Amélie").replace("Paris", "Parés")
    text = text.replace("dark, surreal", "sombre, éthéré")
    changed = dict(files, **{member: text.encode("latin-1")})
    path = write_release(tmp_path, folder, changed, as_zip=False)
    with pytest.raises(DataError) as err:
        load_movielens(path)
    message = str(err.value)
    assert member in message and f"line {line}" in message and "not valid UTF-8" in message


@pytest.mark.fault(
    "movielens",
    "ratings.csv with a foreign header",
    "DataError naming line 1 and the expected header",
)
def test_wrong_header(tmp_path: Path) -> None:
    files = csv_release()
    files["ratings.csv"] = files["ratings.csv"].replace(b"userId,movieId", b"user,item", 1)
    path = write_release(tmp_path, "ml-20m", files, as_zip=True)
    with pytest.raises(DataError, match="line 1: expected the header userId,movieId,rating"):
        load_movielens(path)


@pytest.mark.fault(
    "movielens",
    "bad movies.dat / users.dat lines, duplicate movie id",
    "DataError naming member and line",
)
def test_bad_catalog_lines(tmp_path: Path) -> None:
    movies = ML1M["movies.dat"].replace(b"914::My Fair Lady (1964)::Musical|Romance", b"914")
    path = write_release(tmp_path, "ml-1m", dict(ML1M, **{"movies.dat": movies}), as_zip=True)
    with pytest.raises(DataError, match=r"movies\.dat, line 3: expected MovieID::Title::Genres"):
        load_movielens(path)
    users = ML1M["users.dat"].replace(b"2::M::56::16::", b"2::M::56::42::")
    path = write_release(tmp_path / "u", "ml-1m", dict(ML1M, **{"users.dat": users}), as_zip=True)
    with pytest.raises(DataError, match=r"users\.dat, line 2: occupation code must be 0-20"):
        load_movielens(path)
    movies = ML1M["movies.dat"] + b"661::Duplicate (1996)::Drama\n"
    path = write_release(tmp_path / "d", "ml-1m", dict(ML1M, **{"movies.dat": movies}), as_zip=True)
    with pytest.raises(DataError, match="movie id 661 appears more than once"):
        load_movielens(path)


@pytest.mark.fault(
    "movielens", "a folder of CSVs that is not a release", "DataError: not a MovieLens release"
)
def test_not_a_movielens_folder(tmp_path: Path) -> None:
    folder = tmp_path / "my-data"
    folder.mkdir()
    (folder / "interactions.csv").write_text("user,item\n1,2\n")
    (folder / "ratings.csv").write_text("user,item,rating\n1,2,3\n")  # no movies.csv beside it
    assert not is_movielens(folder)
    assert not is_movielens(folder / "interactions.csv")
    assert not is_movielens(tmp_path / "does-not-exist")
    with pytest.raises(DataError, match="not a MovieLens release"):
        detect_release(folder)
    with pytest.raises(DataError, match="not a MovieLens release"):
        load_movielens(folder)
    with pytest.raises(DataError, match="not a MovieLens release"):
        load_dataset(folder)


@pytest.mark.fault(
    "movielens", "an unrelated zip given to load_movielens", "DataError: not a MovieLens release"
)
def test_unrelated_zip_is_not_movielens(tmp_path: Path) -> None:
    path = tmp_path / "stuff.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("stuff/data.csv", "a,b\n1,2\n")
    assert not is_movielens(path)
    with pytest.raises(DataError, match="not a MovieLens release"):
        load_movielens(path)


@pytest.mark.fault(
    "movielens", "a release zip cut to 200 bytes", "DataError: not a readable zip archive"
)
def test_truncated_zip(tmp_path: Path) -> None:
    good = write_release(tmp_path / "good", "ml-1m", ML1M, as_zip=True)
    bad = tmp_path / "ml-1m.zip"
    bad.write_bytes(good.read_bytes()[:200])
    assert is_movielens(bad)  # named like a release: the loader reports the damage
    with pytest.raises(DataError, match="not a readable zip archive"):
        load_movielens(bad)


@pytest.mark.fault(
    "movielens", "a zip member with a wrong CRC", "DataError naming zip:member: damaged"
)
def test_corrupted_zip_member(tmp_path: Path) -> None:
    rows = b"".join(b"%d::%d::4::97830%04d\n" % (u, m, u) for u in range(1, 40) for m in (73, 661))
    files = dict(ML1M, **{"ratings.dat": rows})
    path = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(f"ml-1m/{name}", data)
    raw = bytearray(path.read_bytes())
    at = raw.find(b"9::661::4")
    raw[at : at + 1] = b"8"  # same length, wrong CRC
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"ml-1m\.zip:ml-1m/ratings\.dat: .*damaged"):
        load_movielens(path)


# -- the real releases (skipped when ../shared is absent) -----------------------------------


def real(name: str) -> Path:
    path = SHARED / f"{name}.zip"
    if not path.exists():
        pytest.skip(f"{path} not present (GroupLens data is not shipped with the repository)")
    return path


@pytest.fixture(scope="module")
def ml100k() -> tuple[Path, object]:
    path = real("ml-100k")
    return path, load_movielens(path)


@pytest.fixture(scope="module")
def latest_small() -> tuple[Path, object]:
    path = real("ml-latest-small")
    return path, load_movielens(path)


def test_real_ml100k(ml100k) -> None:
    path, ds = ml100k
    assert detect_release(path) == "ml-100k"
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (100_000, 943, 1_682)
    assert ds.summary()["rating_histogram"] == {
        "1": 6_110,
        "2": 11_370,
        "3": 27_145,
        "4": 34_174,
        "5": 21_201,
    }
    toy = item(ds, 1)
    assert ds.items.frame["title"][toy] == "Toy Story (1995)"
    assert ds.items.frame["year"][toy] == 1995
    assert ds.items.bags["genres"].row(toy) == ["Animation", "Children's", "Comedy"]
    assert "unknown" not in ds.items.bags["genres"].vocab  # the "unknown" flag means no genre
    assert ds.items.frame["title"][item(ds, 1_682)] == "Scream of Stone (Schrei aus Stein) (1991)"
    user = ds.users.frame.iloc[ds.user_ids.index(1)]
    assert (user["age"], user["gender"], user["occupation"], user["zip_code"]) == (
        24,
        "M",
        "technician",
        "85711",
    )
    assert ds.users.frame["zip_code"][ds.user_ids.index(8)] == "05201"  # leading zero kept
    assert ds.timestamps is not None and ds.timestamps.min() > 8e8


def test_real_ml100k_folder_matches_zip(ml100k, tmp_path: Path) -> None:
    path, zipped = ml100k
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path)
    assert_same(zipped, load_movielens(tmp_path / "ml-100k"))
    assert_same(zipped, load_movielens(tmp_path))  # the parent of the release folder


def test_real_ml_latest_small(latest_small) -> None:
    path, ds = latest_small
    assert detect_release(path) == "ml-latest-small"
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (100_836, 610, 9_742)
    assert ds.summary()["items_with_interactions"] == 9_724
    assert float(ds.interactions.data.mean()) == pytest.approx(3.501557, abs=1e-6)
    toy = item(ds, 1)
    assert ds.items.frame["year"][toy] == 1995
    assert ds.items.bags["genres"].row(toy) == [
        "Adventure",
        "Animation",
        "Children",
        "Comedy",
        "Fantasy",
    ]
    assert "pixar" in ds.items.bags["tags"].row(toy)
    assert not any(t.endswith("\r") for t in ds.items.frame["title"])
    assert np.isnan(ds.items.frame["mean_rating"]).sum() == 9_742 - 9_724


def test_real_ml_latest_small_folder_matches_zip(latest_small, tmp_path: Path) -> None:
    path, zipped = latest_small
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path)
    assert_same(zipped, load_movielens(tmp_path / "ml-latest-small"))
