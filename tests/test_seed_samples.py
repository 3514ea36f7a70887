"""Every Python sample of the user's guide (SEED-websocket-client-guide.md), run against a real
data centre: a SQLite file, a real broadcaster on a free port and, for the live samples, the
simulator collected every 0.2 s.

The samples below are copied verbatim from the guide (trailing spaces aside;
``test_every_guide_sample_is_covered`` checks the copies against the guide when it is
found). Before running, only these text substitutions are made, each asserted to apply:

* the guide's imports (``app.data.websocket_data_reader``, ``services.realtime_client``,
  and the trading system's own ``app.core.config``) become
  ``from datacentre import RealtimeDataClient, WebSocketDataReader``, which fragments that
  use the classes without importing them get too;
* port ``8765`` becomes the test broadcaster's free port; samples without a URL get it from
  ``DATACENTRE_WS_URL``, as a user's would from the configuration;
* the Windows database path becomes the test database;
* ``while True: time.sleep(1)`` keep-alive loops run until the test presses Ctrl-C
  (``_keep_running()`` raises KeyboardInterrupt after a second or so);
* the reconnection sample retries every 0.5 s instead of 5 s;
* fragments made for pasting into the user's code get the context they need: the
  ``await`` snippets run inside ``async def``, the callbacks are given to a client, and the
  functions they call (``process_data``, ``process_batch``) are recording stubs.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import on_port_again, refused_port, wait_until

from datacentre import RealtimeDataClient
from datacentre.core.errors import StoreError
from datacentre.core.instruments import parse_symbol
from datacentre.feed.broadcaster import BroadcasterThread
from datacentre.sources import MarketSimulator

NEW_IMPORT = "from datacentre import RealtimeDataClient, WebSocketDataReader\n"
SEED_DAY = datetime(2026, 1, 2, 8, 13, 5, tzinfo=UTC)
WINDOWS_DB = r'r"G:\Projects\Centralize Data Centre\data\nifty_local.db"'
#: Not runnable here: it drives the user's own trading system (SnapshotBuilder, storage).
NOT_THIS_PROJECT = {"ai_trading_system"}

SAMPLES: dict[str, str] = {
    'reader_integration': r'''from app.data.websocket_data_reader import WebSocketDataReader
from app.core.config import settings

# Initialize WebSocket reader
reader = WebSocketDataReader(ws_url="ws://localhost:8765")

# Wait for connection (automatic, but you can check)
import time
for i in range(10):
    if reader.is_connected():
        break
    time.sleep(0.5)

# Get spot price
spot = reader.get_spot_ltp("NIFTY 50")
print(f"NIFTY 50 Spot: {spot}")

# Get watchlist (ATM ±5 strikes)
symbols = reader.pick_watchlist(atm_window=5, index_symbol="NIFTY 50")
print(f"Watchlist: {len(symbols)} symbols")

# Fetch market data
market_data = reader.fetch_market_data(symbols)
print(f"Market data for {len(market_data)} symbols")

# Fetch Greeks
greeks_data = reader.fetch_greeks_data("NIFTY 50")
print(f"Greeks for {len(greeks_data)} options")

# Collect complete data (all at once)
symbols, market_data, greeks_data = reader.collect_complete_data(
    atm_window=5,
    index_symbol="NIFTY 50"
)
''',
    'simple_client': r'''from services.realtime_client import RealtimeDataClient

# Define callback for real-time data
def on_data(data):
    """Called whenever new data arrives"""
    symbol = data.get('symbol')
    ltp = data.get('ltp')
    volume = data.get('volume')
    delta = data.get('delta')
    iv = data.get('iv')

    print(f"{symbol}: LTP={ltp}, Volume={volume}, Delta={delta}, IV={iv}%")

# Create client
client = RealtimeDataClient(
    ws_url="ws://localhost:8765",
    on_data_callback=on_data
)

# Connect to real-time feed
client.connect()

# Query historical data
latest = client.get_latest("NIFTY 50")
print(f"Latest NIFTY 50: {latest}")

# Get all symbols
symbols = client.get_symbols()
print(f"Available symbols: {len(symbols)}")

# Keep running
import time
try:
    while True:
        time.sleep(1)
except KeyboardInterrupt:
    client.close()
''',
    'available_methods': r'''# Get latest tick for a symbol
latest = client.get_latest("NIFTY06JAN2626500CE")

# Get latest ticks for all symbols
all_latest = client.get_latest_all(limit=100)

# Get historical data
historical = client.get_historical(
    symbol="NIFTY 50",
    start_ts="2026-01-02T08:00:00+00:00",
    end_ts="2026-01-02T09:00:00+00:00"
)

# Get all available symbols
symbols = client.get_symbols()

# Custom SQL query
results = client.query(
    "SELECT * FROM ltp_ticks WHERE symbol = ? ORDER BY ts DESC LIMIT 10",
    ("NIFTY 50",)
)
''',
    'websocket_client': r'''import websocket
import json
import threading
import time

def on_message(ws, message):
    """Handle incoming messages"""
    try:
        data = json.loads(message)

        # Skip welcome/ping messages
        if data.get('type') in ['welcome', 'pong']:
            if data.get('type') == 'welcome':
                print(f"Connected: {data.get('message')}")
            return

        # Process real-time data
        symbol = data.get('symbol')
        ltp = data.get('ltp')
        volume = data.get('volume')
        delta = data.get('delta')
        iv = data.get('iv')

        print(f"{symbol}: LTP={ltp}, Volume={volume}, Delta={delta}, IV={iv}%")
    except json.JSONDecodeError as e:
        print(f"Error decoding message: {e}")

def on_error(ws, error):
    """Handle errors"""
    print(f"WebSocket error: {error}")

def on_close(ws, close_status_code, close_msg):
    """Handle connection close"""
    print("WebSocket connection closed")

def on_open(ws):
    """Handle connection open"""
    print("WebSocket connection established")

# Connect to broadcaster
ws_url = "ws://localhost:8765"
ws = websocket.WebSocketApp(
    ws_url,
    on_message=on_message,
    on_error=on_error,
    on_close=on_close,
    on_open=on_open
)

# Run in separate thread
ws_thread = threading.Thread(target=ws.run_forever)
ws_thread.daemon = True
ws_thread.start()

# Keep main thread alive
try:
    while True:
        time.sleep(1)
except KeyboardInterrupt:
    ws.close()
    print("Disconnected")
''',
    'request_latest': r'''import asyncio
import websockets
import json

async def request_latest():
    uri = "ws://localhost:8765"

    async with websockets.connect(uri) as websocket:
        # Wait for welcome
        await websocket.recv()

        # Request latest data for a symbol
        request = {
            "type": "get_latest",
            "symbol": "NIFTY 50"
        }
        await websocket.send(json.dumps(request))

        # Receive response
        response = await websocket.recv()
        data = json.loads(response)
        print(f"Latest NIFTY 50: {data}")

asyncio.run(request_latest())
''',
    'ping_pong': r'''# Send ping to keep connection alive
request = {"type": "ping"}
await websocket.send(json.dumps(request))

# Server responds with pong
response = await websocket.recv()
''',
    'direct_database': r'''import sqlite3
from pathlib import Path

# Database path
db_path = Path(r"G:\Projects\Centralize Data Centre\data\nifty_local.db")

# Connect to database
conn = sqlite3.connect(str(db_path))
conn.row_factory = sqlite3.Row
cursor = conn.cursor()

# Query latest data for a symbol
cursor.execute("""
    SELECT * FROM ltp_ticks
    WHERE symbol = ?
    ORDER BY ts DESC
    LIMIT 1
""", ("NIFTY 50",))

row = cursor.fetchone()
if row:
    print(f"Latest: {dict(row)}")

# Query historical data
cursor.execute("""
    SELECT * FROM ltp_ticks
    WHERE symbol = ? AND ts >= ? AND ts <= ?
    ORDER BY ts
""", ("NIFTY 50", "2026-01-02T08:00:00+00:00", "2026-01-02T09:00:00+00:00"))

for row in cursor.fetchall():
    print(dict(row))

conn.close()
''',
    'connection_errors': r'''try:
    async with websockets.connect("ws://localhost:8765") as websocket:
        # ... your code ...
except ConnectionRefusedError:
    print("Error: WebSocket broadcaster not running!")
    print("Start it with: .\\start_all_services.bat")
except websockets.exceptions.ConnectionClosed:
    print("Connection closed. Reconnecting...")
    # Implement reconnection logic
except Exception as e:
    print(f"Error: {e}")
''',
    'reconnection': r'''import asyncio
import websockets

async def connect_with_retry(max_retries=5, delay=5):
    """Connect with automatic retry"""
    for attempt in range(max_retries):
        try:
            async with websockets.connect("ws://localhost:8765") as websocket:
                print("Connected!")
                async for message in websocket:
                    # Process messages
                    pass
        except ConnectionRefusedError:
            if attempt < max_retries - 1:
                print(f"Connection refused. Retrying in {delay} seconds...")
                await asyncio.sleep(delay)
            else:
                print("Max retries reached. Please start the broadcaster.")
        except Exception as e:
            print(f"Error: {e}")
            await asyncio.sleep(delay)

asyncio.run(connect_with_retry())
''',
    'wait_for_data': r'''reader = WebSocketDataReader()
# Connection is established immediately
# But wait for first data batch
import time
time.sleep(6)  # Wait slightly longer than broadcast interval

# Now check cache
print(f"Symbols available: {len(reader._data_cache)}")
''',
    'futures_expiry': r'''# Options: NIFTY06JAN26{STRIKE}CE
# Futures: NIFTY27JAN26FUT (different expiry!)

# When looking for futures, search by index base, not expiry
index_base = "NIFTY"  # or "BANKNIFTY"
for symbol in reader._data_cache.keys():
    if "FUT" in symbol and index_base in symbol:
        # Found future (regardless of expiry)
        fut_data = reader._data_cache[symbol]
        break
''',
    'filter_by_symbol': r'''def on_data(data):
    symbol = data.get('symbol')

    # Only process NIFTY 50 and specific options
    if symbol == "NIFTY 50" or "26500" in symbol:
        # Process data
        process_data(data)
''',
    'buffer_batch': r'''buffer = []

def on_data(data):
    buffer.append(data)

    # Process every 10 records
    if len(buffer) >= 10:
        process_batch(buffer)
        buffer.clear()
''',
    'missing_fields': r'''def on_data(data):
    # Check if it's an option (has Greeks)
    if data.get('delta') is not None:
        # It's an option
        delta = data.get('delta')
        iv = data.get('iv')
        # Process option data
    else:
        # It's an index or future
        ltp = data.get('ltp')
        # Process index/future data
''',
    'threading': r'''import threading

def process_data_async(data):
    """Process data in background thread"""
    # Heavy processing here
    pass

def on_data(data):
    # Process in background to avoid blocking
    thread = threading.Thread(target=process_data_async, args=(data,))
    thread.start()
''',
    'logging': r'''import logging

logging.basicConfig(level=logging.INFO)
logger = logging.getLogger(__name__)

def on_data(data):
    try:
        # Process data
        process_data(data)
    except Exception as e:
        logger.error(f"Error processing {data.get('symbol')}: {e}")
''',
    'troubleshooting_db': r'''   import sqlite3
   conn = sqlite3.connect(r"G:\Projects\Centralize Data Centre\data\nifty_local.db")
   cursor = conn.cursor()
   cursor.execute("SELECT MAX(ts) FROM ltp_ticks")
   print(f"Latest data: {cursor.fetchone()[0]}")
   ''',
    'price_monitor': r'''from services.realtime_client import RealtimeDataClient

prices = {}

def on_data(data):
    symbol = data.get('symbol')
    ltp = data.get('ltp')
    prices[symbol] = ltp
    print(f"{symbol}: {ltp}")

client = RealtimeDataClient(on_data_callback=on_data)
client.connect()

# Keep running
import time
while True:
    time.sleep(1)
''',
    'greeks_monitor': r'''from services.realtime_client import RealtimeDataClient

def on_data(data):
    # Only process options (have Greeks)
    if data.get('delta') is not None:
        symbol = data.get('symbol')
        delta = data.get('delta')
        gamma = data.get('gamma')
        theta = data.get('theta')
        vega = data.get('vega')
        iv = data.get('iv')

        print(f"{symbol}:")
        print(f"  Delta: {delta:.4f}, Gamma: {gamma:.6f}")
        print(f"  Theta: {theta:.2f}, Vega: {vega:.2f}")
        print(f"  IV: {iv:.2f}%")

client = RealtimeDataClient(on_data_callback=on_data)
client.connect()

import time
while True:
    time.sleep(1)
''',
    'volume_alert': r'''from services.realtime_client import RealtimeDataClient

def on_data(data):
    symbol = data.get('symbol')
    volume = data.get('volume', 0)

    # Alert if volume exceeds threshold
    if volume > 10000000:  # 10 million
        print(f"ALERT: {symbol} volume spike: {volume:,}")

client = RealtimeDataClient(on_data_callback=on_data)
client.connect()

import time
while True:
    time.sleep(1)
''',
    'ai_trading_system': r'''from app.core.config import settings
from app.domain.market.snapshot_builder import SnapshotBuilder
from app.data.websocket_data_reader import WebSocketDataReader

# Set data source mode to websocket (in .env or code)
settings.DATA_SOURCE_MODE = "websocket"
settings.WEBSOCKET_URL = "ws://localhost:8765"

# Initialize (no angel_client needed!)
snapshot_builder = SnapshotBuilder(angel_client=None, storage=storage)

# Build snapshot - automatically uses WebSocket
snapshot = snapshot_builder.build_snapshot(index_symbol="NIFTY 50")
''',
    'quick_reference': r'''from app.data.websocket_data_reader import WebSocketDataReader

reader = WebSocketDataReader(ws_url="ws://localhost:8765")
import time
time.sleep(5)  # Wait for data

spot = reader.get_spot_ltp("NIFTY 50")
symbols, market_data, greeks = reader.collect_complete_data()
''',
}


ROOT = Path(__file__).resolve().parents[1]
GUIDE_NAME = "SEED-websocket-client-guide.md"


def _normalize(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip("\n").splitlines())


def _guide() -> Path | None:
    """The guide named by DATACENTRE_SEED_GUIDE, else ../shared/ beside the repository."""
    named = os.environ.get("DATACENTRE_SEED_GUIDE")
    candidates = [Path(named)] if named else [ROOT.parent / "shared" / GUIDE_NAME]
    return next((c for c in candidates if c.is_file()), None)


def test_every_guide_sample_is_covered():
    guide = _guide()
    if guide is None:
        where = os.environ.get("DATACENTRE_SEED_GUIDE") or ROOT.parent / "shared" / GUIDE_NAME
        message = f"{GUIDE_NAME} not found at {where} (set DATACENTRE_SEED_GUIDE)"
        if os.environ.get("CI") or os.environ.get("DATACENTRE_REQUIRE_GUIDE"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(encoding="utf-8"), re.S)
    assert [_normalize(b) for b in blocks] == [_normalize(s) for s in SAMPLES.values()]


# ---------------------------------------------------------------- harness


def _sub(code: str, old: str, new: str) -> str:
    assert old in code, f"the sample no longer contains {old!r}: update this test"
    return code.replace(old, new)


def adapt(name: str, *, port: int | None = None, db_path: Path | None = None,
          keep_alive: bool = False) -> str:
    """The sample with the documented substitutions (and nothing else) applied."""
    code = SAMPLES[name]
    code = code.replace("from app.core.config import settings\n", "")
    for old in ("from app.data.websocket_data_reader import WebSocketDataReader\n",
                "from services.realtime_client import RealtimeDataClient\n"):
        code = code.replace(old, NEW_IMPORT)
    if NEW_IMPORT not in code and re.search(r"\b(RealtimeDataClient|WebSocketDataReader)\(", code):
        code = NEW_IMPORT + code  # a fragment that relies on the reader's own import
    if port is not None:
        code = _sub(code, ":8765", f":{port}")
    if db_path is not None:
        code = _sub(code, WINDOWS_DB, f"r{str(db_path)!r}")
    if keep_alive:
        code = _sub(code, "while True:\n", "while _keep_running():\n")
        code = _sub(code, "time.sleep(1)\n", "time.sleep(0.1)\n")
    return code


def run(code: str, namespace: dict | None = None, name: str = "sample") -> dict:
    namespace = {} if namespace is None else namespace
    namespace.setdefault("__name__", "__seed_sample__")
    exec(compile(code, f"<client-guide sample {name}>", "exec"), namespace)
    return namespace


def ctrl_c_when(condition: Callable[[], object], timeout: float = 30) -> Callable[[], bool]:
    """A keep-alive condition that presses Ctrl-C (raises KeyboardInterrupt) once
    ``condition()`` holds, or after ``timeout`` seconds (the test's checks then say what is missing)."""
    deadline = time.monotonic() + timeout

    def _keep_running() -> bool:
        if condition() or time.monotonic() >= deadline:
            raise KeyboardInterrupt
        return True

    return _keep_running


class Printed:
    """What a running sample has printed so far (``capsys`` read as it goes)."""

    def __init__(self, capsys) -> None:
        self.capsys, self.text = capsys, ""

    def __call__(self) -> str:
        self.text += self.capsys.readouterr().out
        return self.text


def literal_after(prefix: str, out: str):
    """The Python literal printed after ``prefix`` on its line."""
    import ast

    line = next(line for line in out.splitlines() if line.startswith(prefix))
    return ast.literal_eval(line[len(prefix):])


def no_callback_errors(caplog) -> None:
    assert "on_data_callback failed" not in caplog.text
    assert "handler failed" not in caplog.text


@pytest.fixture
def db_path(db_url) -> Path:
    return Path(db_url.removeprefix("sqlite:///"))


@pytest.fixture
def seed_day(store) -> list[str]:
    """Twelve simulator snapshots on the guide's day, 08:13:05 UTC on, every 5 minutes."""
    sim = MarketSimulator(seed=1)
    stamps = []
    for n in range(12):
        moment = SEED_DAY + timedelta(minutes=5 * n)
        store.write_snapshot(moment, sim.snapshot(moment))
        stamps.append(moment.isoformat())
    return stamps


@pytest.fixture
def configure(monkeypatch, tmp_path, live_broadcaster, db_url):
    """A user's environment: the broadcaster at ws://localhost:PORT, the store (or none)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATACENTRE_WS_URL", f"ws://localhost:{live_broadcaster.port}")
    monkeypatch.delenv("DATACENTRE_WS_TOKEN", raising=False)

    def _configure(with_store: bool = True) -> None:
        missing = f"sqlite:///{tmp_path / 'elsewhere' / 'nifty_local.db'}"
        monkeypatch.setenv("DATACENTRE_DB_URL", db_url if with_store else missing)

    _configure(True)
    return _configure


@pytest.fixture
def market(store, live_market, configure):
    """The live simulated market, with at least one snapshot stored."""
    assert wait_until(lambda: live_market.snapshots > 0, 10)
    return live_market


@pytest.fixture(autouse=True)
def _capture_client_logs(caplog):
    caplog.set_level(logging.INFO, logger="datacentre")


# ---------------------------------------------------------------- Method 1: WebSocketDataReader


def test_reader_integration(store, live_broadcaster, market, capsys, caplog):
    ns = run(adapt("reader_integration", port=live_broadcaster.port), name="reader_integration")
    try:
        out = capsys.readouterr().out
        spot = float(re.search(r"^NIFTY 50 Spot: ([\d.]+)$", out, re.M).group(1))
        assert spot in {t["ltp"] for t in store.history("NIFTY 50")}
        assert "Watchlist: 24 symbols" in out
        assert "Market data for 24 symbols" in out
        greeks = int(re.search(r"^Greeks for (\d+) options$", out, re.M).group(1))
        assert greeks >= 22
        symbols, market_data, greeks_data = ns["symbols"], ns["market_data"], ns["greeks_data"]
        assert len(symbols) == 24 and symbols[0] == "NIFTY 50"
        assert parse_symbol(symbols[1]).kind == "FUT" and parse_symbol(symbols[1]).underlying == "NIFTY"
        assert list(market_data) == symbols
        assert set(greeks_data) == set(symbols[2:])
        assert all(g["option_type"] in ("CE", "PE") and g["delta"] is not None for g in greeks_data.values())
    finally:
        ns["reader"].close()
    no_callback_errors(caplog)


def test_wait_then_futures_by_index_base(live_broadcaster, market, capsys):
    ns = run(adapt("wait_for_data"), name="wait_for_data")  # time.sleep(6), as written
    try:
        available = int(re.search(r"Symbols available: (\d+)", capsys.readouterr().out).group(1))
        assert available >= 50
        run(SAMPLES["futures_expiry"], ns, name="futures_expiry")
        future = parse_symbol(ns["fut_data"]["symbol"])
        assert future.kind == "FUT" and future.underlying == "NIFTY"  # never BANKNIFTY's
        assert ns["fut_data"]["ltp"] > 0
    finally:
        ns["reader"].close()


def test_quick_reference(live_broadcaster, market):
    # time.sleep(5), as written
    ns = run(adapt("quick_reference", port=live_broadcaster.port), name="quick_reference")
    try:
        assert ns["spot"] > 0
        assert len(ns["symbols"]) == 24
        assert list(ns["market_data"]) == ns["symbols"]
        assert len(ns["greeks"]) == 22
    finally:
        ns["reader"].close()


# ---------------------------------------------------------------- the simple client library


@pytest.mark.parametrize("with_store", [True, False], ids=["store", "websocket-only"])
def test_simple_client_then_available_methods(with_store, store, seed_day, live_broadcaster, market,
                                              configure, capsys, caplog):
    configure(with_store)
    printed = Printed(capsys)
    tick_line = r"^(.+?): LTP=(\S+), Volume=(\S+), Delta=(\S+), IV=(\S+)%$"
    ns = {"_keep_running": ctrl_c_when(lambda: len(re.findall(tick_line, printed(), re.M)) > 50)}
    try:
        run(adapt("simple_client", port=live_broadcaster.port, keep_alive=True), ns, name="simple_client")
        out = printed()
        latest = literal_after("Latest NIFTY 50: ", out)
        assert latest["symbol"] == "NIFTY 50" and latest["ltp"] > 0 and latest["ts"] > seed_day[-1]
        available = int(re.search(r"^Available symbols: (\d+)$", out, re.M).group(1))
        assert 0 < available <= len(store.symbols())
        ticks = re.findall(tick_line, out, re.M)
        assert len(ticks) > 50
        assert ("NIFTY 50" in {t[0] for t in ticks})
        assert "welcome" not in out and "pong" not in out
        assert not ns["client"].is_connected()  # the sample's Ctrl-C handler closed it

        methods = SAMPLES["available_methods"]
        if with_store:
            run(methods, ns, name="available_methods")
        else:
            with pytest.raises(StoreError, match="no tick store found"):
                run(methods, ns, name="available_methods")  # custom SQL needs the store
        assert ns["latest"] == store.latest("NIFTY06JAN2626500CE")
        assert ns["latest"]["ts"] in seed_day
        assert len(ns["all_latest"]) == 100
        assert [t["ts"] for t in ns["historical"]] == [t for t in seed_day if t <= "2026-01-02T09:00"]
        assert ns["symbols"] == store.symbols()
        if with_store:
            assert len(ns["results"]) == 10
            assert [r["symbol"] for r in ns["results"]] == ["NIFTY 50"] * 10
            assert ns["results"][0]["ts"] >= ns["results"][-1]["ts"]
    finally:
        if "client" in ns:
            ns["client"].close()
    no_callback_errors(caplog)


# ---------------------------------------------------------------- Method 2: plain websocket-client


def test_plain_websocket_client(live_broadcaster, market, capsys):
    printed = Printed(capsys)
    index_line = r"^NIFTY 50: LTP=[\d.]+, Volume=0, Delta=None, IV=None%$"
    call_line = r"^NIFTY\w+CE: LTP=[\d.]+, Volume=\d+, Delta=0\.\d+, IV=[\d.]+%$"
    ns = {"_keep_running": ctrl_c_when(lambda: re.search(index_line, printed(), re.M)
                                       and re.search(call_line, printed.text, re.M))}
    run(adapt("websocket_client", port=live_broadcaster.port, keep_alive=True), ns,
        name="websocket_client")
    # ws.close() ran in the sample's Ctrl-C handler: the server sees the client go at once
    # (websocket-client's own thread may sit in select() for up to 10 s more: a daemon, harmless).
    assert wait_until(lambda: live_broadcaster.stats()["subscribers"] == 0, 5)
    out = printed()
    assert "WebSocket connection established" in out
    assert "Connected: Connected to Real-Time Data Centre" in out
    assert re.search(index_line, out, re.M)
    assert re.search(call_line, out, re.M)
    assert "Error decoding message" not in out and "WebSocket error" not in out
    assert "Disconnected" in out


# ---------------------------------------------------------------- Advanced: async websockets


def test_request_latest_with_websockets(store, seed_day, live_broadcaster, capsys):
    run(adapt("request_latest", port=live_broadcaster.port), name="request_latest")
    data = literal_after("Latest NIFTY 50: ", capsys.readouterr().out)
    assert data == {"type": "latest", **store.latest("NIFTY 50")}


def test_ping_pong_with_websockets(live_broadcaster):
    code = ("import json\nimport websockets\n\nasync def _sample(uri):\n"
            "    async with websockets.connect(uri) as websocket:\n"
            "        await websocket.recv()\n"
            + textwrap.indent(SAMPLES["ping_pong"], " " * 8) + "        return response\n")
    ns = run(code, name="ping_pong")
    import json

    response = json.loads(asyncio.run(ns["_sample"](live_broadcaster.url)))
    assert response["type"] == "pong" and response["timestamp"].endswith("+00:00")


def _connection_errors(port: int) -> str:
    body = _sub(SAMPLES["connection_errors"], "# ... your code ...", "pass  # ... your code ...")
    body = _sub(body, ":8765", f":{port}")
    return "import websockets\n\nasync def _sample():\n" + textwrap.indent(body, "    ")


def test_connection_refused_message(capsys):
    ns = run(_connection_errors(refused_port()), name="connection_errors")
    asyncio.run(ns["_sample"]())
    out = capsys.readouterr().out
    assert "Error: WebSocket broadcaster not running!" in out
    assert "Start it with: .\\start_all_services.bat" in out


def test_connection_errors_silent_when_running(live_broadcaster, capsys):
    ns = run(_connection_errors(live_broadcaster.port), name="connection_errors")
    asyncio.run(ns["_sample"]())
    assert capsys.readouterr().out == ""


def test_reconnection_logic(store, capsys):
    first = BroadcasterThread(store, port=0, poll_interval=0.02).start()
    port = first.port
    code = _sub(adapt("reconnection", port=port), "delay=5", "delay=0.5")
    thread = threading.Thread(target=run, args=(code,), kwargs={"name": "reconnection"}, daemon=True)
    out = ""

    def printed(text: str, times: int = 1) -> bool:
        nonlocal out
        out += capsys.readouterr().out
        return out.count(text) >= times

    second = None
    try:
        thread.start()
        assert wait_until(lambda: printed("Connected!"), 10)
        first.stop()
        second = on_port_again(port, lambda p: BroadcasterThread(store, port=p, poll_interval=0.02).start())
        assert wait_until(lambda: printed("Connected!", 2), 10)
        second.stop()
        thread.join(15)
        assert not thread.is_alive()  # gave up after max_retries, as written
    finally:
        first.stop()
        if second is not None:
            second.stop()
    printed("")
    assert out.count("Connected!") >= 2


# ---------------------------------------------------------------- direct database access


def test_direct_database_access(store, seed_day, db_path, capsys):
    run(adapt("direct_database", db_path=db_path), name="direct_database")
    out = capsys.readouterr().out
    latest = literal_after("Latest: ", out)
    assert latest["symbol"] == "NIFTY 50" and latest["ts"] == seed_day[-1]
    rows = [line for line in out.splitlines() if line.startswith("{'id': ")]
    expected = store.history("NIFTY 50", "2026-01-02T08:00:00+00:00", "2026-01-02T09:00:00+00:00")
    assert len(rows) == len(expected) == 10
    assert set(latest) == {"id", *expected[0]}


def test_troubleshooting_latest_data(store, seed_day, db_path, capsys):
    code = _sub(textwrap.dedent(SAMPLES["troubleshooting_db"]),
                r'r"G:\Projects\Centralize Data Centre\data\nifty_local.db"', f"r{str(db_path)!r}")
    run(code, name="troubleshooting_db")
    assert capsys.readouterr().out.strip() == f"Latest data: {store.last_ts()}"


def test_direct_database_is_shared_with_a_live_collector(store, market, db_path, monkeypatch):
    """The client guide's sqlite3 reads work while the collector writes (WAL: readers never block).

    Twenty readers each hold a read transaction open until the collector has committed a
    snapshot it started after the reader's first read: every reader's interval contains a
    whole write, the reader's view stays put meanwhile, and it sees the new rows after.
    """
    writes: list[tuple[float, float]] = []  # (start, end) of each snapshot the collector commits
    write_snapshot = store.write_snapshot

    def timed_write(*args, **kwargs):
        started = time.monotonic()
        try:
            return write_snapshot(*args, **kwargs)
        finally:
            writes.append((started, time.monotonic()))

    monkeypatch.setattr(store, "write_snapshot", timed_write)

    def read() -> tuple[float, float]:
        conn = sqlite3.connect(str(db_path))
        try:
            conn.execute("BEGIN")
            first = conn.execute("SELECT MAX(ts) FROM ltp_ticks").fetchone()[0]
            opened = time.monotonic()  # the read transaction's view is fixed from here
            assert first is not None
            assert wait_until(lambda: any(start > opened for start, _ in list(writes)), 10)
            assert conn.execute("SELECT MAX(ts) FROM ltp_ticks").fetchone()[0] == first
            closed = time.monotonic()
            conn.commit()
            assert conn.execute("SELECT MAX(ts) FROM ltp_ticks").fetchone()[0] > first
            return opened, closed
        finally:
            conn.close()

    with ThreadPoolExecutor(20) as pool:
        readers = [f.result() for f in [pool.submit(read) for _ in range(20)]]
    assert len(readers) == 20
    assert all(any(opened < start and end < closed for start, end in writes) for opened, closed in readers)


# ---------------------------------------------------------------- best practices: callbacks


def _feed(on_data: Callable[[dict], None], until: Callable[[list[str]], object], timeout: float = 20) -> None:
    """Live ticks into ``on_data`` until ``until(symbols given so far)`` holds."""
    given: list[str] = []

    def counting(data: dict) -> None:
        given.append(data["symbol"])
        on_data(data)

    client = RealtimeDataClient(on_data_callback=counting)
    try:
        assert client.connect()
        assert wait_until(lambda: until(given), timeout), f"{len(given)} ticks given"
    finally:
        client.close()


def test_filter_by_symbol(market, caplog):
    seen: list[str] = []
    ns = run(SAMPLES["filter_by_symbol"], {"process_data": lambda d: seen.append(d["symbol"])})
    # until the filter has had other symbols to leave out
    _feed(ns["on_data"], lambda given: "NIFTY 50" in seen and len(set(given)) > len(set(seen)))
    assert all(s == "NIFTY 50" or "26500" in s for s in seen)
    no_callback_errors(caplog)


def test_buffer_and_batch(market, caplog):
    batches: list[list[dict]] = []
    ns = run(SAMPLES["buffer_batch"], {"process_batch": lambda b: batches.append(list(b))})
    _feed(ns["on_data"], lambda given: len(batches) > 5)
    assert len(batches) > 5 and all(len(b) == 10 for b in batches)
    assert len(ns["buffer"]) < 10
    no_callback_errors(caplog)


def test_missing_fields_and_threads(market, caplog):
    kinds: list[str] = []
    ns = run(SAMPLES["missing_fields"])
    original = ns["on_data"]

    def on_data(data: dict) -> None:
        original(data)
        kinds.append("option" if data.get("delta") is not None else "other")

    _feed(on_data, lambda given: {"option", "other"} <= set(kinds))
    ns = run(SAMPLES["threading"])
    _feed(ns["on_data"], lambda given: len(given) >= 50)
    no_callback_errors(caplog)


def test_log_important_events(market, caplog):
    def process_data(data: dict) -> None:
        if data["symbol"] == "NIFTY BANK":
            raise ValueError("boom")

    ns = run(SAMPLES["logging"], {"process_data": process_data, "__name__": "seed_sample"})
    with caplog.at_level(logging.ERROR, logger="seed_sample"):
        _feed(ns["on_data"], lambda given: "NIFTY BANK" in given and "Error processing" in caplog.text)
    assert "Error processing NIFTY BANK: boom" in caplog.text
    no_callback_errors(caplog)


# ---------------------------------------------------------------- example projects


@pytest.mark.parametrize("name", ["price_monitor", "greeks_monitor", "volume_alert"])
def test_example_projects(name, store, market, capsys, caplog):
    printed = Printed(capsys)
    def twice(pattern: str) -> bool:
        return max(Counter(re.findall(pattern, printed(), re.M)).values(), default=0) >= 2

    enough = {  # a second snapshot: every kind of tick of the first has reached the sample
        "price_monitor": lambda: twice(r"^(NIFTY 50): "),
        "greeks_monitor": lambda: twice(r"^(NIFTY\w+(?:CE|PE)):$"),
        "volume_alert": lambda: market.snapshots >= started + 3,
    }[name]
    started = market.snapshots
    ns = {"_keep_running": ctrl_c_when(enough)}
    try:
        with pytest.raises(KeyboardInterrupt):  # these samples leave Ctrl-C to Python
            run(adapt(name, keep_alive=True), ns, name=name)
    finally:
        ns["client"].close()
    out = printed()
    no_callback_errors(caplog)
    if name == "price_monitor":
        assert ns["prices"]["NIFTY 50"] > 0
        assert re.search(r"^NIFTY 50: [\d.]+$", out, re.M)
    elif name == "greeks_monitor":
        assert re.search(r"^NIFTY\w+(CE|PE):$", out, re.M)
        assert re.search(r"^  Delta: -?\d\.\d{4}, Gamma: \d\.\d{6}$", out, re.M)
        assert re.search(r"^  IV: [\d.]+%$", out, re.M)
        assert "NIFTY 50:" not in out  # indices and futures have no Greeks
    else:
        loud = store.query("SELECT COUNT(*) AS n FROM ltp_ticks WHERE volume > 10000000")[0]["n"]
        assert ("ALERT:" in out) == (loud > 0)
