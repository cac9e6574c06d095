#include "ablate/results/ingest.h"

#include <SQLiteCpp/Exception.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <vector>

namespace ablate::results {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t kChunkBytes = size_t{4} << 20;  // read events.jsonl this much at a time
// Bytes before the ingest position kept to recognise the same file next time: a rewrite that
// changes them (a resume that logs different values) triggers a re-ingest.
constexpr int64_t kTailBytes = 256;
constexpr size_t kQuoteChars = 80;  // of a malformed line, in its error message

// An open file descriptor, closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads up to `n` bytes at `offset` (fewer at the end of the file); false on an I/O error.
bool read_at(int fd, int64_t offset, size_t n, std::string& out) {
  out.resize(n);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return true;
}

// Calls emit(name, value) for every number in `v`: booleans as 1/0, arrays as name[i], objects as
// name<sep>key; null and strings are skipped. `name` is a scratch buffer, restored on return.
template <class Emit>
void flatten(std::string& name, const json& v, char sep, Emit& emit) {
  switch (v.type()) {
    case json::value_t::number_integer:
      emit(name, static_cast<double>(v.get<int64_t>()));
      break;
    case json::value_t::number_unsigned:
      emit(name, static_cast<double>(v.get<uint64_t>()));
      break;
    case json::value_t::number_float:
      emit(name, v.get<double>());
      break;
    case json::value_t::boolean:
      emit(name, v.get<bool>() ? 1.0 : 0.0);
      break;
    case json::value_t::array: {
      const size_t len = name.size();
      for (size_t i = 0; i < v.size(); ++i) {
        name += '[';
        name += std::to_string(i);
        name += ']';
        flatten(name, v[i], sep, emit);
        name.resize(len);
      }
      break;
    }
    case json::value_t::object: {
      const size_t len = name.size();
      for (const auto& [key, sub] : v.items()) {
        name += sep;
        name += key;
        flatten(name, sub, sep, emit);
        name.resize(len);
      }
      break;
    }
    default:  // null (NaN, inf), string, binary
      break;
  }
}

// An integral JSON number that fits int64_t ("step": 10 or 10.0), else nullopt.
std::optional<int64_t> integer(const json& v) {
  constexpr auto kMax = std::numeric_limits<int64_t>::max();
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    return u <= static_cast<uint64_t>(kMax) ? std::optional<int64_t>(static_cast<int64_t>(u))
                                            : std::nullopt;
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    // 2^63 is exactly representable; anything at or beyond it does not fit.
    if (std::abs(d) < 9223372036854775808.0 && d == std::trunc(d)) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

std::string quote(const char* begin, const char* end) {
  std::string s(begin, std::min<size_t>(end - begin, kQuoteChars));
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return s + (static_cast<size_t>(end - begin) > kQuoteChars ? "..." : "");
}

struct EventsState {
  int64_t offset = 0;  // bytes of events.jsonl ingested (a line boundary)
  int64_t lines = 0;   // lines ingested
  std::optional<int64_t> inode;
  std::string tail;  // the kTailBytes (or fewer) bytes before offset
};

class Ingest {
 public:
  Ingest(Store& store, int64_t job, IngestResult& result)
      : store_(store), job_(job), result_(result) {}

  void events(const fs::path& file);
  void summary(const fs::path& file, const std::string& sweep, const std::string& job_id);

 private:
  EventsState load_state();
  void save_state(const EventsState& state);
  // Adds the rows of one line; returns "" or why the line is not an event.
  std::string event(const char* begin, const char* end);
  void add_metric(const std::string& name, int64_t step, double value);
  void fail(const std::string& message) {
    if (!result_.error.empty()) result_.error += "; ";
    result_.error += message;
  }

  Store& store_;
  int64_t job_;
  IngestResult& result_;
  SQLite::Statement* insert_ = nullptr;
  std::string name_;  // scratch buffer for metric names
};

EventsState Ingest::load_state() {
  auto& s = store_.statement(
      "SELECT events_offset, events_lines, events_inode, events_tail FROM jobs WHERE pk = ?");
  s.bind(1, job_);
  s.executeStep();
  EventsState state;
  state.offset = s.getColumn(0).getInt64();
  state.lines = s.getColumn(1).getInt64();
  if (!s.getColumn(2).isNull()) state.inode = s.getColumn(2).getInt64();
  if (!s.getColumn(3).isNull()) {
    const auto* p = static_cast<const char*>(s.getColumn(3).getBlob());
    state.tail.assign(p, static_cast<size_t>(s.getColumn(3).getBytes()));
  }
  s.tryReset();
  return state;
}

void Ingest::save_state(const EventsState& state) {
  auto& s = store_.statement(
      "UPDATE jobs SET events_offset = ?, events_lines = ?, events_inode = ?, events_tail = ? "
      "WHERE pk = ?");
  s.bind(1, state.offset);
  s.bind(2, state.lines);
  if (state.inode) {
    s.bind(3, *state.inode);
  } else {
    s.bind(3);
  }
  s.bind(4, state.tail.data(), static_cast<int>(state.tail.size()));
  s.bind(5, job_);
  s.exec();
}

void Ingest::add_metric(const std::string& name, int64_t step, double value) {
  insert_->tryReset();
  insert_->bindNoCopy(2, name);  // `name` outlives the step below
  insert_->bind(3, step);
  insert_->bind(4, value);
  insert_->exec();
  ++result_.rows_added;
}

std::string Ingest::event(const char* begin, const char* end) {
  json e;
  try {
    e = json::parse(begin, end);
  } catch (const json::exception& ex) {
    return std::string("not JSON (") + ex.what() + ")";
  }
  if (!e.is_object()) return "not a JSON object";
  const auto step_it = e.find("step");
  const std::optional<int64_t> step = step_it == e.end() ? std::nullopt : integer(*step_it);
  if (!step) return "no integer \"step\"";
  const auto kind_it = e.find("kind");
  if (kind_it == e.end() || !kind_it->is_string() ||
      kind_it->get_ref<const std::string&>().empty()) {
    return "no \"kind\" string";
  }
  const std::string& kind = kind_it->get_ref<const std::string&>();
  const bool attention = kind == "attention";
  std::string prefix;
  if (attention) {
    const auto layer_it = e.find("layer");
    const std::optional<int64_t> layer = layer_it == e.end() ? std::nullopt : integer(*layer_it);
    if (!layer || *layer < 0) return "an attention event without a non-negative \"layer\"";
    prefix = "attn" + std::to_string(*layer) + "/";
  } else {
    prefix = kind + "/";  // train/, eval/, and any kind a later version adds
  }
  result_.last_step = std::max(result_.last_step, *step);
  auto emit = [&](const std::string& name, double value) { add_metric(name, *step, value); };
  for (auto it = e.begin(); it != e.end(); ++it) {
    const std::string& key = it.key();
    if (key == "step" || key == "kind" || (attention && key == "layer")) continue;
    name_ = prefix;
    name_ += key;
    flatten(name_, it.value(), '.', emit);
  }
  return "";
}

void Ingest::events(const fs::path& file) {
  const int fd_raw = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_raw < 0) {
    if (errno != ENOENT) fail("events.jsonl: cannot open: " + std::string(std::strerror(errno)));
    return;  // not written yet: nothing to do
  }
  Fd fd(fd_raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    fail("events.jsonl: not a readable regular file");
    return;
  }
  const auto inode = static_cast<int64_t>(st.st_ino);
  EventsState state = load_state();

  // The same file as last time, grown only at its end? Otherwise a resume rewrote it.
  bool rewritten = false;
  if (state.offset > 0) {
    std::string before;
    const auto tail_size = static_cast<int64_t>(state.tail.size());
    if (static_cast<int64_t>(st.st_size) < state.offset || state.inode != inode ||
        !read_at(fd.get(), state.offset - tail_size, state.tail.size(), before) ||
        before != state.tail) {
      rewritten = true;
    }
  }
  if (rewritten) {
    auto& clear = store_.statement("DELETE FROM metrics WHERE job = ?");
    clear.bind(1, job_);
    clear.exec();
    state = EventsState{};
    result_.reingested = true;
  }
  state.inode = inode;

  insert_ = &store_.statement(
      "INSERT INTO metrics (job, name, step, value) VALUES (?, ?, ?, ?) "
      "ON CONFLICT (job, name, step) DO UPDATE SET value = excluded.value");
  insert_->bind(1, job_);

  std::string buffer, chunk;
  int64_t read_pos = state.offset;  // file offset of the end of `buffer`
  bool stop = false;
  while (!stop) {
    if (!read_at(fd.get(), read_pos, kChunkBytes, chunk)) {
      fail("events.jsonl: read error: " + std::string(std::strerror(errno)));
      break;
    }
    if (chunk.empty()) break;
    read_pos += static_cast<int64_t>(chunk.size());
    buffer += chunk;
    // Complete lines only; the rest waits for the next chunk (or the next ingest).
    size_t start = 0;
    for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      const char* b = buffer.data() + start;
      const char* e = buffer.data() + nl;
      const bool blank =
          std::all_of(b, e, [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
      if (!blank) {
        const std::string why = event(b, e);
        if (!why.empty()) {
          result_.error_line = state.lines + 1;
          fail("events.jsonl line " + std::to_string(result_.error_line) + ": " + why + ": " +
               quote(b, e));
          stop = true;
          break;
        }
      }
      ++state.lines;
      ++result_.lines_read;
      state.offset += static_cast<int64_t>(nl + 1 - start);
    }
    buffer.erase(0, start);
  }
  insert_->tryReset();
  if (state.offset > 0) {
    const int64_t n = std::min(state.offset, kTailBytes);
    if (!read_at(fd.get(), state.offset - n, static_cast<size_t>(n), state.tail))
      state.tail.clear();
  } else {
    state.tail.clear();
  }
  save_state(state);
}

void Ingest::summary(const fs::path& file, const std::string& sweep, const std::string& job_id) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return;  // not written yet (the worker writes it atomically, so never half)
  std::stringstream text;
  text << in.rdbuf();
  json s;
  try {
    s = json::parse(text.str());
  } catch (const json::exception& ex) {
    fail(std::string("summary.json: not JSON (") + ex.what() + ")");
    return;
  }
  if (!s.is_object()) {
    fail("summary.json: not a JSON object");
    return;
  }
  for (const char* key : {"status", "causality"}) {
    if (s.contains(key) && !s[key].is_string()) {
      fail(std::string("summary.json: \"") + key + "\" is not a string");
      return;
    }
  }
  result_.summary_status = s.value("status", "");
  result_.causality = s.value("causality", "");

  std::vector<std::pair<std::string, double>> rows;
  std::map<std::string, std::string> strings;
  auto emit = [&](const std::string& name, double value) { rows.emplace_back(name, value); };
  for (auto it = s.begin(); it != s.end(); ++it) {
    const std::string& key = it.key();
    if (key == "status" || key == "causality") continue;
    if (it->is_string()) {
      strings[key] = it->get<std::string>();
      continue;
    }
    std::string name = key;
    flatten(name, it.value(), '_', emit);
  }
  for (auto& row : rows) std::replace(row.first.begin(), row.first.end(), '.', '_');

  // Names no job had before need new columns in the `results` view (checked before this job's
  // old rows go, so a re-ingest does not count its own names as new).
  bool new_names = false;
  auto& known = store_.statement("SELECT 1 FROM summaries WHERE name = ? LIMIT 1");
  for (const auto& row : rows) {
    known.tryReset();
    known.bind(1, row.first);
    if (!known.executeStep()) new_names = true;
  }
  known.tryReset();

  auto& clear = store_.statement("DELETE FROM summaries WHERE job = ?");
  clear.bind(1, job_);
  clear.exec();
  auto& insert = store_.statement(
      "INSERT INTO summaries (job, name, value) VALUES (?, ?, ?) "
      "ON CONFLICT (job, name) DO UPDATE SET value = excluded.value");
  insert.bind(1, job_);
  for (const auto& [name, value] : rows) {
    insert.tryReset();
    insert.bind(2, name);
    insert.bind(3, value);
    insert.exec();
    ++result_.summary_rows;
  }
  auto& update = store_.statement("UPDATE jobs SET summary_status = ?, causality = ? WHERE pk = ?");
  if (s.contains("status")) {
    update.bind(1, result_.summary_status);
  } else {
    update.bind(1);
  }
  if (s.contains("causality")) {
    update.bind(2, result_.causality);
  } else {
    update.bind(2);
  }
  update.bind(3, job_);
  update.exec();
  if (!strings.empty()) store_.set_environment(sweep, job_id, strings);
  if (new_names) store_.refresh_views();
}

}  // namespace

IngestResult ingest_run_dir(Store& store, const std::string& sweep, const std::string& job_id,
                            const std::string& run_dir) {
  IngestResult result;
  Store::Transaction transaction(store);
  const int64_t job = store.job_pk(sweep, job_id);
  try {
    Ingest ingest(store, job, result);
    ingest.events(fs::path(run_dir) / "events.jsonl");
    ingest.summary(fs::path(run_dir) / "summary.json", sweep, job_id);
  } catch (const SQLite::Exception& e) {
    throw store.failure("ingest of job " + job_id + " from " + run_dir, e);
  }
  transaction.commit();
  return result;
}

}  // namespace ablate::results
