"""Readers for the real datasets: MovieLens-100K, Foursquare CSV and raw TSMC2014.

Unit tests write a few hand-made rows into tmp_path; expected values are worked
out by hand in comments (UTC offsets from the US DST rules, ISO rewrites of
TSMC times, provinces' extents). Tests marked slow read ../shared/data and skip
when it is absent (a fresh clone has no ../shared).
"""

from __future__ import annotations

import datetime
import gzip
import math
import pathlib
import time

import numpy as np
import pandas as pd
import pytest

from trainer.data import schema, timezones
from trainer.data.readers import foursquare
from trainer.data.readers import movielens
from trainer.data.readers import zip_codes

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _unix(*args: int) -> int:
    return int(datetime.datetime(*args, tzinfo=datetime.timezone.utc).timestamp())


# Instants around New York's 2012 DST changes. DST began on the second Sunday of
# March (Mar 11) at 02:00 EST = 07:00 UTC and ended on the first Sunday of
# November (Nov 4) at 02:00 EDT = 06:00 UTC. EST = UTC-5 (-300), EDT = UTC-4 (-240).
SUMMER = _unix(2012, 7, 1, 12, 0, 0)  # EDT: -240; Phoenix (no DST): -420; Edmonton MDT: -360
WINTER = _unix(2012, 1, 15, 12, 0, 0)  # EST: -300
BEFORE_DST = _unix(2012, 3, 11, 6, 59, 59)  # 01:59:59 EST: -300
AT_DST = _unix(2012, 3, 11, 7, 0, 0)  # 03:00:00 EDT: -240

GENRES = (
    "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\nDocumentary|7\n"
    "Drama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\nRomance|14\nSci-Fi|15\n"
    "Thriller|16\nWar|17\nWestern|18\n\n"
)


def _flags(*set_indices: int) -> str:
    return "|".join("1" if i in set_indices else "0" for i in range(19))


def _write_movielens(directory: pathlib.Path, **overrides: bytes | None) -> pathlib.Path:
    files = {
        "u.genre": GENRES.encode("latin-1"),
        "u.item": (
            f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{_flags(3, 4, 5)}\n"
            f"2|Café au lait (1994)|01-Jan-1994||http://example|{_flags(5, 14)}\n"
            f"3|Untitled (1990)|01-Jan-1990||http://example|{_flags()}\n"
        ).encode("latin-1"),
        "u.user": (
            "1|24|M|technician|85711\n"  # Tucson, AZ: America/Phoenix, no DST
            "2|53|F|other|10001\n"  # Manhattan: America/New_York
            "3|23|M|writer|T8H1N\n"  # Sherwood Park, Alberta (Canadian)
            "4|33|F|other|02146\n"  # Brookline, MA: retired in 1997 -> prefix 021
            "5|40|M|other|ABCDE\n"  # neither US nor Canadian
        ).encode("ascii"),
        "u.data": (
            f"2\t1\t5\t{SUMMER}\n"
            f"2\t2\t3\t{WINTER}\n"
            f"2\t1\t4\t{BEFORE_DST}\n"
            f"2\t3\t4\t{AT_DST}\n"
            f"1\t1\t2\t{SUMMER}\n"
            f"3\t1\t1\t{SUMMER}\n"
            f"5\t2\t5\t{SUMMER}\n"
            f"2\t2\t5\tyesterday\n"  # unparsable: kept as text for validation to reject
            f"99\t1\t3\t{SUMMER}\n"  # user not in u.user
        ).encode("ascii"),
    }
    for name, data in overrides.items():
        files[name] = data
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if data is not None:
            (directory / name).write_bytes(data)
    return directory


# ---------------------------------------------------------------- zip codes


def test_lookup_exact_zip_has_package_location_and_zone():
    tucson = zip_codes.lookup_zip_code("85711")
    assert tucson.source == "zip"
    assert tucson.reason == ""
    # Tucson is at about 32.2 N, 110.9 W.
    assert abs(tucson.latitude - 32.2) < 0.2 and abs(tucson.longitude + 110.9) < 0.2
    assert tucson.timezone == "America/Phoenix"
    # ZIP+4, spaces and case are normalised.
    assert zip_codes.lookup_zip_code(" 85711-1234 ") == tucson


def test_lookup_unknown_zip_falls_back_to_prefix_centroid():
    brookline = zip_codes.lookup_zip_code("02146")  # retired 1997 (now 02446)
    assert brookline.source == "zip3-centroid"
    assert "021" in brookline.reason
    # Prefix 021 is Boston and its suburbs: about 42.2..42.6 N, 70.9..71.4 W.
    assert 42.0 < brookline.latitude < 42.7 and -71.5 < brookline.longitude < -70.8
    assert brookline.timezone == "America/New_York"


# Provinces' approximate extents (degrees), from a map, independent of the table.
PROVINCE_EXTENTS = {
    "A": (46.6, 60.4, -67.8, -52.6),  # Newfoundland and Labrador
    "B": (43.4, 47.0, -66.4, -59.7),  # Nova Scotia
    "C": (45.9, 47.1, -64.5, -61.9),  # Prince Edward Island
    "E": (44.6, 48.1, -69.1, -63.7),  # New Brunswick
    "G": (45.0, 62.6, -79.8, -57.1),  # Quebec
    "H": (45.0, 62.6, -79.8, -57.1),
    "J": (45.0, 62.6, -79.8, -57.1),
    "K": (41.7, 56.9, -95.2, -74.3),  # Ontario
    "L": (41.7, 56.9, -95.2, -74.3),
    "M": (41.7, 56.9, -95.2, -74.3),
    "N": (41.7, 56.9, -95.2, -74.3),
    "P": (41.7, 56.9, -95.2, -74.3),
    "R": (49.0, 60.0, -102.0, -88.9),  # Manitoba
    "S": (49.0, 60.0, -110.0, -101.4),  # Saskatchewan
    "T": (49.0, 60.0, -120.0, -110.0),  # Alberta
    "V": (48.3, 60.0, -139.1, -114.0),  # British Columbia
    "X": (60.0, 83.2, -136.5, -61.0),  # Northwest Territories / Nunavut
    "Y": (60.0, 69.7, -141.0, -123.8),  # Yukon
}


@pytest.mark.parametrize("letter", sorted(PROVINCE_EXTENTS))
def test_canadian_codes_resolve_inside_their_province(letter):
    location = zip_codes.lookup_zip_code(f"{letter}1A2B")
    lat_min, lat_max, lon_min, lon_max = PROVINCE_EXTENTS[letter]
    assert location.source == "canada-province"
    assert lat_min <= location.latitude <= lat_max
    assert lon_min <= location.longitude <= lon_max
    assert timezones.is_valid_timezone(location.timezone)


def test_alberta_postal_code_uses_alberta_centre_and_mountain_time():
    location = zip_codes.lookup_zip_code("T8H1N")  # Sherwood Park, AB
    assert (location.latitude, location.longitude) == (53.93, -116.58)
    assert location.timezone == "America/Edmonton"
    assert "Alberta" in location.reason


@pytest.mark.parametrize(
    "code, reason_part",
    [
        ("", "empty"),
        ("ABCDE", "neither"),
        ("1234", "neither"),
        ("D1A2B", "no province uses the letter 'D'"),
        ("00000", "prefix 000"),
        ("09001", "MILITARY"),  # the package lists APO codes at (0, 0)
    ],
)
def test_unresolvable_codes_have_nan_location_and_reason(code, reason_part):
    location = zip_codes.lookup_zip_code(code)
    assert location.source == "unknown"
    assert math.isnan(location.latitude) and math.isnan(location.longitude)
    assert location.timezone == ""
    assert reason_part in location.reason


def test_lookup_rejects_non_string():
    with pytest.raises(ValueError, match="`zip_code` must be a str"):
        zip_codes.lookup_zip_code(85711)  # type: ignore[arg-type]


def test_resolve_keeps_index_and_loads_package_once():
    codes = pd.Series(["85711", "T8H1N", "85711", "junk"], index=[10, 11, 12, 13])
    resolved = zip_codes.resolve_zip_codes(codes)
    assert list(resolved.index) == [10, 11, 12, 13]
    assert list(resolved.columns) == list(zip_codes.RESULT_COLUMNS)
    assert list(resolved["location_source"]) == ["zip", "canada-province", "zip", "unknown"]
    assert resolved["latitude"].dtype == np.float64
    zip_codes.resolve_zip_codes(["10001"])
    assert zip_codes._zip_data.cache_info().misses == 1  # pylint: disable=protected-access


def test_utc_offset_minutes_by_hand():
    seconds = np.array([SUMMER, WINTER, BEFORE_DST, AT_DST, np.nan])
    np.testing.assert_array_equal(
        timezones.utc_offset_minutes(seconds, "America/New_York"), [-240, -300, -300, -240, 0]
    )
    zones = np.array(["America/Phoenix", "America/Phoenix", "", "Not/AZone", "America/New_York"], dtype=object)
    np.testing.assert_array_equal(timezones.utc_offset_minutes(seconds, zones), [-420, -420, 0, 0, 0])
    with pytest.raises(ValueError, match="`zones`"):
        timezones.utc_offset_minutes(seconds, zones[:2])


# ---------------------------------------------------------------- MovieLens


def test_movielens_events(tmp_path):
    directory = _write_movielens(tmp_path / "ml")
    tables = movielens.read_movielens_100k(str(directory))
    events = tables.events
    assert tables.name == "movielens-100k"
    assert not tables.event_location_is_item_location
    assert len(events) == 9  # nothing dropped, bad rows included
    assert set(schema.EVENT_COLUMNS) <= set(events.columns)
    assert list(events["_source_row"]) == list(range(1, 10))
    assert set(events["_source_file"]) == {str(directory / "u.data")}
    # Values stay text; the event type is fixed.
    assert list(events["value"]) == ["5", "3", "4", "4", "2", "1", "5", "5", "3"]
    assert events["timestamp"].iloc[7] == "yesterday"
    assert set(events["event_type"]) == {"rating"}
    # User 2 (New York) x4, Tucson, Alberta in summer (MDT), no zone, bad time, unknown user.
    assert list(events["utc_offset_minutes"]) == [-240, -300, -300, -240, -420, -360, 0, 0, 0]
    # An event's place is its user's place.
    tucson = zip_codes.lookup_zip_code("85711")
    assert events["latitude"].iloc[4] == tucson.latitude
    assert events["longitude"].iloc[4] == tucson.longitude
    assert (events["latitude"].iloc[5], events["longitude"].iloc[5]) == (53.93, -116.58)
    assert math.isnan(events["latitude"].iloc[6]) and math.isnan(events["latitude"].iloc[8])


def test_movielens_items(tmp_path):
    tables = movielens.read_movielens_100k(str(_write_movielens(tmp_path / "ml")))
    items = tables.items
    assert list(items["item_id"]) == ["1", "2", "3"]
    assert items["text"].iloc[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    assert items["category"].iloc[0] == "Animation|Children's|Comedy"
    # latin-1 title decoded.
    assert items["text"].iloc[1] == "Café au lait (1994). Genres: Comedy, Romance"
    assert items["category"].iloc[1] == "Comedy|Romance"
    # No genre: title alone, empty category, and a note.
    assert (items["text"].iloc[2], items["category"].iloc[2]) == ("Untitled (1990)", "")
    assert "latitude" not in items.columns
    assert list(items["_source_row"]) == [1, 2, 3]
    assert any("1 of 3 items have no genre" in note for note in tables.notes)


def test_movielens_users_and_notes(tmp_path):
    tables = movielens.read_movielens_100k(str(_write_movielens(tmp_path / "ml")))
    users = tables.users
    assert list(users["user_id"]) == ["1", "2", "3", "4", "5"]
    assert list(users["age"]) == ["24", "53", "23", "33", "40"]  # text as read
    assert list(users["zip_code"]) == ["85711", "10001", "T8H1N", "02146", "ABCDE"]
    assert list(users["location_source"]) == ["zip", "zip", "canada-province", "zip3-centroid", "unknown"]
    assert math.isnan(users["latitude"].iloc[4])
    notes = "\n".join(tables.notes)
    assert "2 zip, 1 zip3-centroid, 1 canada-province, 1 unknown (of 5)" in notes
    assert "1 of 5 users' zip codes fell back to a Canadian province centre: 'T8H1N'" in notes
    assert "1 of 9 ratings are by users not in u.user" in notes
    # Users 5 and 99 have no zone.
    assert "2 of 9 ratings have no user time zone and get 0" in notes


@pytest.mark.parametrize("missing", ["u.data", "u.item", "u.user", "u.genre"])
def test_movielens_missing_file_names_it(tmp_path, missing):
    directory = _write_movielens(tmp_path / "ml", **{missing: None})
    with pytest.raises(ValueError, match=missing.replace(".", r"\.")):
        movielens.read_movielens_100k(str(directory))


def test_movielens_empty_file_names_it(tmp_path):
    directory = _write_movielens(tmp_path / "ml", **{"u.data": b"\n"})
    with pytest.raises(ValueError, match=r"u\.data.*empty"):
        movielens.read_movielens_100k(str(directory))


def test_movielens_wrong_field_count_names_file(tmp_path):
    directory = _write_movielens(tmp_path / "ml", **{"u.user": b"1|24|M|85711\n"})
    with pytest.raises(ValueError, match=r"u\.user.*4 .*fields.*expected 5"):
        movielens.read_movielens_100k(str(directory))
    directory = _write_movielens(tmp_path / "ml2", **{"u.item": b"1|Toy Story (1995)|01-Jan-1995||url|0|1\n"})
    with pytest.raises(ValueError, match=r"u\.item.*expected 24"):
        movielens.read_movielens_100k(str(directory))


def test_movielens_rejects_empty_directory_argument():
    with pytest.raises(ValueError, match="`directory`"):
        movielens.read_movielens_100k("")


# ---------------------------------------------------------------- Foursquare CSV

CHECKINS = (
    "user_id,venue_id,timestamp,latitude,longitude\n"
    "u1,v1,2012-07-01T12:00:00Z,40.75,-73.99\n"  # EDT: -240
    "u1,v2,2012-01-15T12:00:00Z,40.70,-74.01\n"  # EST: -300
    "u2,v1,2012-11-04T05:59:59Z,40.75,-73.99\n"  # 01:59:59 EDT, the last second of DST: -240
    "u2,v3,2012-11-04T06:00:00Z,40.80,-73.95\n"  # 01:00:00 EST: -300
    "u2,v3,not-a-time,40.80,-73.95\n"  # unparsable: text kept, offset 0
    "u3,v1,2012-07-01T12:00:00+02:00,95.5,-73.99\n"  # 10:00Z = 06:00 EDT; latitude out of range kept as text
)
VENUES = "venue_id,latitude,longitude\nv1,40.75,-73.99\nv2,40.70,-74.01\nv3,40.80,-73.95\n"


def _write_foursquare(directory: pathlib.Path, checkins: str | None = CHECKINS, venues: str | None = VENUES) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    if checkins is not None:
        (directory / "checkins.csv").write_text(checkins)
    if venues is not None:
        (directory / "venues.csv").write_text(venues)
    return str(directory)


def test_foursquare_csv_with_timezone(tmp_path):
    directory = _write_foursquare(tmp_path / "fsq-nyc")
    tables = foursquare.read_foursquare_csv(directory, timezone="America/New_York")
    events = tables.events
    assert tables.name == "fsq-nyc"
    assert tables.event_location_is_item_location
    assert len(events) == 6
    assert list(events["item_id"]) == ["v1", "v2", "v1", "v3", "v3", "v1"]
    assert list(events["utc_offset_minutes"]) == [-240, -300, -240, -300, 0, -240]
    assert events["utc_offset_minutes"].dtype == np.int32
    assert events["timestamp"].iloc[4] == "not-a-time"
    assert events["latitude"].iloc[5] == "95.5"  # text: validation rejects it
    assert set(events["event_type"]) == {"checkin"}
    assert list(events["_source_row"]) == [1, 2, 3, 4, 5, 6]
    items = tables.items
    assert list(items["item_id"]) == ["v1", "v2", "v3"]
    assert list(items["text"]) == ["", "", ""]
    assert list(items["latitude"]) == ["40.75", "40.70", "40.80"]
    assert set(items["_source_file"]) == {str(tmp_path / "fsq-nyc" / "venues.csv")}


def test_foursquare_csv_without_timezone_or_venues(tmp_path):
    directory = _write_foursquare(tmp_path / "fsq", venues=None)
    tables = foursquare.read_foursquare_csv(directory)
    # Absent, which validation reads as 0 (unknown) and which lets a pipeline-level zone apply.
    assert "utc_offset_minutes" not in tables.events.columns
    assert tables.items is None
    assert any("No `timezone` given" in note for note in tables.notes)
    # A single file is read on its own.
    single = foursquare.read_foursquare_csv(str(tmp_path / "fsq" / "checkins.csv"), "America/New_York")
    assert len(single.events) == 6 and single.items is None


def test_foursquare_csv_bad_timezone_names_argument(tmp_path):
    directory = _write_foursquare(tmp_path / "fsq")
    with pytest.raises(ValueError, match="`timezone`.*Mars/Olympus"):
        foursquare.read_foursquare_csv(directory, timezone="Mars/Olympus")


@pytest.mark.parametrize(
    "checkins, venues, file_name, message",
    [
        (None, VENUES, "checkins.csv", "does not exist"),
        ("", VENUES, "checkins.csv", "empty"),
        ("user_id,venue_id,timestamp,latitude,longitude\n", VENUES, "checkins.csv", "no rows"),
        ("user_id,venue_id,latitude,longitude\nu1,v1,1,2\n", VENUES, "checkins.csv", "timestamp"),
        (CHECKINS, "venue_id,lat,lon\nv1,1,2\n", "venues.csv", "latitude"),
        (CHECKINS, "", "venues.csv", "empty"),
    ],
)
def test_foursquare_csv_errors_name_the_file(tmp_path, checkins, venues, file_name, message):
    directory = _write_foursquare(tmp_path / "fsq", checkins=checkins, venues=venues)
    with pytest.raises(ValueError, match=rf"{file_name}.*{message}|{message}.*{file_name}"):
        foursquare.read_foursquare_csv(directory)


# ---------------------------------------------------------------- Foursquare TSMC

TSMC_LINES = [
    # Row 1: the first check-in of the NYC release.
    b"470\t49bbd6c0f964a520f4531fe3\t4bf58dd8d48988d127951735\tArts & Crafts Store\t"
    b"40.719810375488535\t-74.00258103213994\t-240\tTue Apr 03 18:00:09 +0000 2012",
    # Row 2: category name in latin-1 ("Caf\xe9"), not UTF-8.
    b"979\tcafe1\tcat2\tCaf\xe9\t40.6068\t-74.0442\t-240\tTue Apr 03 18:00:25 +0000 2012",
    # Row 3: the same name in UTF-8; a winter time (New York EST, offset -300).
    b"979\tcafe2\tcat2\tCaf\xc3\xa9\t40.7\t-74.0\t-300\tSat Dec 01 09:30:00 +0000 2012",
    # Row 4: April has 30 days: unconvertible, kept raw.
    b"470\tcafe1\tcat2\tCaf\xe9\t40.6068\t-74.0442\t-240\tTue Apr 31 18:00:25 +0000 2012",
    # Row 5: out-of-range latitude text; the venue moved (a conflict; its first row wins).
    b"12\tcafe2\tcat2\tCaf\xc3\xa9\t91.5\t-74.0\t-300\tSun Dec 02 23:59:59 -0500 2012",
    # Row 6: weekday does not match the date (2012-04-03 was a Tuesday): kept raw.
    b"12\t49bbd6c0f964a520f4531fe3\t4bf58dd8d48988d127951735\tArts & Crafts Store\t"
    b"40.719810375488535\t-74.00258103213994\t-240\tWed Apr 03 18:00:09 +0000 2012",
]


def _write_tsmc(path: pathlib.Path, lines: list[bytes] = TSMC_LINES) -> str:
    data = b"\r\n".join(lines) + b"\r\n"  # the release uses Windows line ends
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return str(path)


def test_tsmc_events(tmp_path):
    path = _write_tsmc(tmp_path / "dataset_TSMC2014_NYC.txt")
    tables = foursquare.read_foursquare_tsmc(path)
    events = tables.events
    assert tables.event_location_is_item_location
    assert len(events) == 6
    assert list(events["timestamp"]) == [
        "2012-04-03T18:00:09+00:00",
        "2012-04-03T18:00:25+00:00",
        "2012-12-01T09:30:00+00:00",
        "Tue Apr 31 18:00:25 +0000 2012",
        "2012-12-02T23:59:59-05:00",
        "Wed Apr 03 18:00:09 +0000 2012",
    ]
    assert list(events["utc_offset_minutes"]) == ["-240", "-240", "-300", "-240", "-300", "-240"]
    assert events["latitude"].iloc[4] == "91.5"
    assert events["latitude"].iloc[0] == "40.719810375488535"
    assert list(events["user_id"]) == ["470", "979", "979", "470", "12", "12"]
    assert list(events["_source_row"]) == [1, 2, 3, 4, 5, 6]
    notes = "\n".join(tables.notes)
    assert "2 of 6 check-in times" in notes and "row 4" in notes
    assert "2 bytes" in notes and "latin-1" in notes


def test_tsmc_items(tmp_path):
    path = _write_tsmc(tmp_path / "tsmc.txt")
    tables = foursquare.read_foursquare_tsmc(path)
    items = tables.items
    assert list(items["item_id"]) == ["49bbd6c0f964a520f4531fe3", "cafe1", "cafe2"]
    assert list(items["text"]) == ["Arts & Crafts Store", "Café", "Café"]  # latin-1 and UTF-8 agree
    assert list(items["category"]) == ["Arts & Crafts Store", "Café", "Café"]
    assert list(items["latitude"]) == ["40.719810375488535", "40.6068", "40.7"]
    assert list(items["_source_row"]) == [1, 2, 3]  # each venue's first check-in
    assert any("1 venues have differing" in note for note in tables.notes)


def test_tsmc_gzip(tmp_path):
    tables = foursquare.read_foursquare_tsmc(_write_tsmc(tmp_path / "tsmc.txt.gz"))
    assert tables.events["timestamp"].iloc[0] == "2012-04-03T18:00:09+00:00"


def test_tsmc_time_conversion_by_hand():
    times = pd.Series(
        [
            "Tue Apr 03 18:00:09 +0000 2012",
            "Sat Feb 29 23:15:00 +0530 2020",  # leap day, a Saturday
            "Fri Feb 29 23:15:00 +0000 2019",  # 2019 is no leap year
            "Tue Apr 03 25:00:09 +0000 2012",  # no hour 25
            "2012-04-03T18:00:09Z",  # already ISO: not the TSMC layout
            "",
        ]
    )
    converted, ok = foursquare.tsmc_time_to_iso(times)
    assert list(converted) == [
        "2012-04-03T18:00:09+00:00",
        "2020-02-29T23:15:00+05:30",
        "Fri Feb 29 23:15:00 +0000 2019",
        "Tue Apr 03 25:00:09 +0000 2012",
        "2012-04-03T18:00:09Z",
        "",
    ]
    assert list(ok) == [True, True, False, False, False, False]


def test_decode_utf8_or_latin1():
    assert foursquare.decode_utf8_or_latin1("Café".encode("utf-8")) == ("Café", 0)
    assert foursquare.decode_utf8_or_latin1(b"Caf\xe9 \xc3\xa9 \xff") == ("Café é ÿ", 2)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"1\t2\t3\n", "3 tab-separated fields per line; expected 8"),
    ],
)
def test_tsmc_errors_name_the_file(tmp_path, data, message):
    path = tmp_path / "tsmc.txt"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=rf"tsmc\.txt.*{message}"):
        foursquare.read_foursquare_tsmc(str(path))
    with pytest.raises(ValueError, match=r"missing\.txt"):
        foursquare.read_foursquare_tsmc(str(tmp_path / "missing.txt"))


# ---------------------------------------------------------------- real data (slow)


def _real(name: str) -> pathlib.Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real dataset folder {path} is absent (a fresh clone has no ../shared/data)")
    return path


@pytest.mark.slow
def test_real_movielens_100k():
    directory = _real("movielens-100k")
    start = time.perf_counter()
    tables = movielens.read_movielens_100k(str(directory))
    elapsed = time.perf_counter() - start
    # The release's README: 100,000 ratings by 943 users on 1,682 movies.
    assert len(tables.events) == 100_000
    assert len(tables.users) == 943 and tables.events["user_id"].nunique() == 943
    assert len(tables.items) == 1682 and tables.events["item_id"].nunique() == 1682
    assert tables.items["text"].iloc[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    assert tables.users["location_source"].isin(zip_codes.LOCATION_SOURCES).all()
    # Most users have an exact zip; 17 non-numeric codes are Canadian-style.
    assert (tables.users["location_source"] == "zip").sum() > 850
    assert (tables.users["location_source"] == "canada-province").sum() == 18
    # Ratings span 1997-09..1998-04: US offsets only (UTC-10 .. UTC-4) or 0 for no zone.
    assert set(tables.events["utc_offset_minutes"]) <= {0, -240, -300, -360, -420, -480, -540, -600}
    assert elapsed < 20.0, f"reading MovieLens-100K took {elapsed:.1f}s"


@pytest.mark.slow
def test_real_foursquare_nyc():
    directory = _real("foursquare-nyc")
    start = time.perf_counter()
    tables = foursquare.read_foursquare_csv(str(directory), timezone="America/New_York")
    elapsed = time.perf_counter() - start
    # README: 147,938 check-ins by 1,083 users at 5,135 venues.
    assert len(tables.events) == 147_938
    assert tables.events["user_id"].nunique() == 1083
    assert len(tables.items) == 5135 and tables.events["item_id"].nunique() == 5135
    # April 2012 .. February 2013 in New York: EDT or EST.
    assert set(tables.events["utc_offset_minutes"]) == {-240, -300}
    assert elapsed < 20.0, f"reading Foursquare NYC took {elapsed:.1f}s"
