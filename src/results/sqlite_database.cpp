#include "linkstyle/sqlite_database.hpp"

#include <cmath>
#include <sqlite3.h>

#include <fmt/format.h>

#include "linkstyle/atomic_file.hpp"
#include "linkstyle/errors.hpp"

namespace linkstyle {

namespace fs = std::filesystem;

Database::Database(const fs::path& file, Mode mode) : file_(file) {
  if (mode == Mode::open_existing && !fs::exists(file)) throw Error(file, "no such results database");
  const int flags = mode == Mode::open_existing ? SQLITE_OPEN_READWRITE : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (sqlite3_open_v2(file.c_str(), &connection_, flags, nullptr) != SQLITE_OK) {
    const std::string message = connection_ ? sqlite3_errmsg(connection_) : "cannot open";
    sqlite3_close(connection_);
    connection_ = nullptr;
    throw Error(file, "cannot open the results database: " + message);
  }
  sqlite3_busy_timeout(connection_, 10000);
  // A file that is not a database fails on its first read.
  try {
    execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  } catch (...) {
    sqlite3_close(connection_);
    connection_ = nullptr;
    throw;
  }
}

Database::~Database() { sqlite3_close(connection_); }

void Database::fail(const std::string& what) const {
  throw Error(file_, fmt::format("{}: {}", what, connection_ ? sqlite3_errmsg(connection_) : "no connection"));
}

void Database::execute(const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(connection_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    throw Error(file_, "SQLite: " + text);
  }
}

void Database::checkpoint() {
  int log_frames = 0, checkpointed_frames = 0;
  if (sqlite3_wal_checkpoint_v2(connection_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
                                &checkpointed_frames) != SQLITE_OK)
    fail("cannot move the write-ahead log into the database (disk full?)");
}

void Database::begin() { execute("BEGIN IMMEDIATE"); }
void Database::commit() { execute("COMMIT"); }
void Database::rollback() noexcept {
  if (connection_ && !sqlite3_get_autocommit(connection_))
    sqlite3_exec(connection_, "ROLLBACK", nullptr, nullptr, nullptr);
}

bool Database::has_table(const std::string& name) {
  Statement exists(*this, "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?");
  exists.bind(1, name);
  return exists.step() && exists.column_int(0) > 0;
}

std::optional<std::string> Database::query_text(const std::string& sql) {
  Statement statement(*this, sql);
  if (!statement.step() || statement.is_null(0)) return std::nullopt;
  return statement.column_text(0);
}

std::optional<int64_t> Database::query_int(const std::string& sql) {
  Statement statement(*this, sql);
  if (!statement.step() || statement.is_null(0)) return std::nullopt;
  return statement.column_int(0);
}

Database::Statement::Statement(Database& database, const std::string& sql) : database_(database) {
  if (sqlite3_prepare_v2(database.connection_, sql.c_str(), -1, &statement_, nullptr) != SQLITE_OK) {
    std::string shown = sql.substr(0, 60);
    for (char& c : shown)
      if (c == '\n' || c == '\r') c = ' ';
    database.fail("SQLite cannot prepare '" + shown + "'");
  }
}

Database::Statement::~Statement() { sqlite3_finalize(statement_); }

Database::Statement& Database::Statement::bind(int index, double value) {
  if (sqlite3_bind_double(statement_, index, value) != SQLITE_OK) database_.fail("SQLite bind");
  return *this;
}
Database::Statement& Database::Statement::bind(int index, int64_t value) {
  if (sqlite3_bind_int64(statement_, index, value) != SQLITE_OK) database_.fail("SQLite bind");
  return *this;
}
Database::Statement& Database::Statement::bind(int index, const std::string& value) {
  if (sqlite3_bind_text(statement_, index, value.c_str(), int(value.size()), SQLITE_TRANSIENT) != SQLITE_OK)
    database_.fail("SQLite bind");
  return *this;
}
Database::Statement& Database::Statement::bind_null(int index) {
  if (sqlite3_bind_null(statement_, index) != SQLITE_OK) database_.fail("SQLite bind");
  return *this;
}
Database::Statement& Database::Statement::bind_finite(int index, double value) {
  return std::isfinite(value) ? bind(index, value) : bind_null(index);
}

bool Database::Statement::step() {
  const int result = sqlite3_step(statement_);
  if (result == SQLITE_ROW) return true;
  if (result == SQLITE_DONE) return false;
  database_.fail("SQLite step");
}

void Database::Statement::run() {
  while (step()) {
  }
  reset();
}

void Database::Statement::reset() {
  sqlite3_reset(statement_);
  sqlite3_clear_bindings(statement_);
}

int Database::Statement::columns() const { return sqlite3_column_count(statement_); }
std::string Database::Statement::column_name(int index) const { return sqlite3_column_name(statement_, index); }
bool Database::Statement::is_null(int index) const { return sqlite3_column_type(statement_, index) == SQLITE_NULL; }
double Database::Statement::column_double(int index) const { return sqlite3_column_double(statement_, index); }
int64_t Database::Statement::column_int(int index) const { return sqlite3_column_int64(statement_, index); }
std::string Database::Statement::column_text(int index) const {
  const auto* text = sqlite3_column_text(statement_, index);
  return text ? std::string(reinterpret_cast<const char*>(text)) : std::string();
}
std::string Database::Statement::column_as_text(int index) const {
  switch (sqlite3_column_type(statement_, index)) {
    case SQLITE_NULL:
      return "";
    case SQLITE_INTEGER:
      return std::to_string(column_int(index));
    case SQLITE_FLOAT:
      return fmt::format("{:.17g}", column_double(index));
    default:
      return column_text(index);
  }
}

namespace {

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

int64_t export_csv(Database& database, const std::string& query, const fs::path& output) {
  const bool is_table = query.find(' ') == std::string::npos;
  if (is_table && !database.has_table(query)) throw Error(database.file(), "has no table '" + query + "'");
  Database::Statement statement(database, is_table ? "SELECT * FROM \"" + query + "\"" : query);
  std::string text;
  for (int c = 0; c < statement.columns(); ++c) text += (c ? "," : "") + csv_field(statement.column_name(c));
  text += "\n";
  int64_t rows = 0;
  while (statement.step()) {
    for (int c = 0; c < statement.columns(); ++c) text += (c ? "," : "") + csv_field(statement.column_as_text(c));
    text += "\n";
    ++rows;
  }
  write_file_atomically(output, text);
  return rows;
}

}  // namespace linkstyle
