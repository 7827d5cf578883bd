#!/usr/bin/python3
"""Generate reference values for the core/geo tests: testdata/geodesic.json.

The Go tests read only the JSON, so the project builds and tests without
Python. Re-run this script only to change or extend the reference set:

    apt-get install -y python3-geographiclib python3-pyproj
    /usr/bin/python3 core/geo/testdata/gen_geodesic.py

Contents (all on WGS84):

  distances  geodesic distances from GeographicLib's Geodesic.Inverse
             (Karney's algorithm, accurate to ~15 nm) between points in
             58-71 N, 4-31 E, from 1 m to 1,500 km, plus special cases.
  meridian   distances along a meridian from a projection origin; the
             transverse Mercator northing of a point on the central
             meridian is exactly this arc length (x = 0).
  tm         transverse Mercator forward values (k0 = 1, origin at (0, 0))
             from PROJ's tmerc (Poder/Engsager algorithm, independent of
             the Krueger series used in Go). The python3-geographiclib
             package has no TransverseMercator class, so PROJ is used when
             python3-pyproj is available; without it this list is empty and
             the Go tests rely on the meridian values, round trips and the
             projected-vs-geodesic distance checks.

The generator is deterministic (fixed seed), so re-running it reproduces the
same file.
"""

import json
import math
import os
import random

from geographiclib.geodesic import Geodesic

G = Geodesic.WGS84
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "geodesic.json")

LAT_MIN, LAT_MAX = 58.0, 71.0
LON_MIN, LON_MAX = 4.0, 31.0


def inside(lat, lon):
    return LAT_MIN <= lat <= LAT_MAX and LON_MIN <= lon <= LON_MAX


def distances(rng):
    out = []

    def add(lat1, lon1, lat2, lon2, note):
        s12 = G.Inverse(lat1, lon1, lat2, lon2, Geodesic.DISTANCE)["s12"]
        out.append({"lat1": lat1, "lon1": lon1, "lat2": lat2, "lon2": lon2,
                    "s12": s12, "note": note})

    # Special cases.
    add(59.91, 10.75, 59.91, 10.75, "identical points")
    add(58.0, 10.0, 71.0, 10.0, "same meridian, full latitude span")
    add(65.0, 4.0, 65.0, 31.0, "same parallel, full longitude span")
    add(58.0, 4.0, 71.0, 31.0, "box diagonal")
    add(71.0, 4.0, 58.0, 31.0, "other box diagonal")
    add(59.9139, 10.7522, 69.6492, 18.9553, "Oslo - Tromso")
    add(60.39299, 5.32415, 63.43049, 10.39506, "Bergen - Trondheim")

    # Random pairs: a start point in the box, a random azimuth and a
    # log-uniform distance from 1 m to 1,500 km; the end point must also be
    # in the box. The distance is then recomputed from the stored
    # coordinates so that the JSON is self-consistent.
    decades = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 5.0),
               (5.0, 6.0), (6.0, math.log10(1.5e6))]
    for lo, hi in decades:
        n = 0
        while n < 30:
            lat1 = rng.uniform(LAT_MIN, LAT_MAX)
            lon1 = rng.uniform(LON_MIN, LON_MAX)
            azi = rng.uniform(-180.0, 180.0)
            s = 10 ** rng.uniform(lo, hi)
            d = G.Direct(lat1, lon1, azi, s)
            lat2, lon2 = d["lat2"], d["lon2"]
            if not inside(lat2, lon2):
                continue
            add(lat1, lon1, lat2, lon2, "random %g-%g m" % (10 ** lo, 10 ** hi))
            n += 1
    return out


def meridian(rng):
    out = []
    for _ in range(40):
        olat = rng.uniform(LAT_MIN, LAT_MAX)
        olon = rng.uniform(LON_MIN, LON_MAX)
        lat = rng.uniform(LAT_MIN - 1, LAT_MAX + 1)
        s = G.Inverse(olat, olon, lat, olon, Geodesic.DISTANCE)["s12"]
        out.append({"olat": olat, "olon": olon, "lat": lat,
                    "y": s if lat >= olat else -s})
    return out


def tm(rng):
    try:
        import pyproj
    except ImportError:
        return [], "none (python3-pyproj not installed)"
    out = []
    for _ in range(60):
        olat = rng.uniform(LAT_MIN, LAT_MAX)
        olon = rng.uniform(LON_MIN, LON_MAX)
        # Up to ~700 km from the central meridian.
        lat = rng.uniform(LAT_MIN, LAT_MAX)
        span = 700e3 / (111e3 * math.cos(math.radians(lat)))
        lon = olon + rng.uniform(-span, span)
        crs = ("+proj=tmerc +lat_0=%r +lon_0=%r +k=1 +x_0=0 +y_0=0 "
               "+ellps=WGS84 +units=m +no_defs" % (olat, olon))
        t = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        x, y = t.transform(lon, lat)
        out.append({"olat": olat, "olon": olon, "lat": lat, "lon": lon,
                    "x": x, "y": y})
    return out, "PROJ %s tmerc via pyproj %s" % (pyproj.proj_version_str,
                                                pyproj.__version__)


def main():
    rng = random.Random(20240611)
    import geographiclib
    tm_values, tm_source = tm(random.Random(7))
    data = {
        "ellipsoid": {"a": G.a, "f": G.f},
        "source": {"geodesic": "geographiclib %s Geodesic.WGS84.Inverse"
                   % geographiclib.__version__, "tm": tm_source},
        "distances": distances(rng),
        "meridian": meridian(rng),
        "tm": tm_values,
    }
    with open(OUT, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print("wrote %s: %d distances, %d meridian, %d tm" % (
        OUT, len(data["distances"]), len(data["meridian"]), len(tm_values)))


if __name__ == "__main__":
    main()
