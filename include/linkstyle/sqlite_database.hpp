// linkstyle/sqlite_database.hpp
//
// WHAT THIS REPRESENTS
//   A small RAII wrapper of SQLite: a connection, prepared statements with typed binding,
//   transactions, and a CSV export of any table or query. linkstyle's results speak SQL only
//   through ResultsDatabase (results_database.hpp), which owns the schema; this wrapper is also
//   the way to query a results file from C++.
// REQUIRES
//   A path in a writable folder (create) or an existing SQLite file (open).
// ENSURES
//   Every SQLite failure throws linkstyle::Error naming the database file and SQLite's message.
//   Transactions are all-or-nothing, also when the process is killed (SQLite's journal): a
//   reader never sees half a chunk. The CSV export writes atomically (RFC 4180 quoting, a header
//   row, NULL as an empty field, numbers with 17 significant digits).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace linkstyle {

class Database {
 public:
  enum class Mode { open_existing, create_or_open };
  Database(const std::filesystem::path& file, Mode mode);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  void execute(const std::string& sql);
  // Moves the write-ahead log into the database file (synced) and empties it, so that the file
  // alone holds every commit; throws Error when that fails (a full disk).
  void checkpoint();

  class Statement {
   public:
    Statement(Database& database, const std::string& sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    // Parameters are numbered from 1.
    Statement& bind(int index, double value);
    Statement& bind(int index, int64_t value);
    Statement& bind(int index, int value) { return bind(index, int64_t(value)); }
    Statement& bind(int index, const std::string& value);
    Statement& bind_null(int index);
    // Binds a double, or NULL when it is not finite.
    Statement& bind_finite(int index, double value);
    // Runs one step: true when a row is available.
    bool step();
    // Runs to completion and resets, ready for the next binding.
    void run();
    void reset();
    int columns() const;
    std::string column_name(int index) const;
    bool is_null(int index) const;
    double column_double(int index) const;
    int64_t column_int(int index) const;
    std::string column_text(int index) const;
    // The text SQLite would print for the column (numbers with full precision), "" for NULL.
    std::string column_as_text(int index) const;

   private:
    Database& database_;
    sqlite3_stmt* statement_ = nullptr;
  };

  // Runs `sql` (one statement) and returns the first column of the first row, if any.
  std::optional<std::string> query_text(const std::string& sql);
  std::optional<int64_t> query_int(const std::string& sql);

  void begin();
  void commit();
  void rollback() noexcept;
  // Runs `body` in one transaction: committed when it returns, rolled back when it throws.
  template <typename Body>
  void in_transaction(Body&& body) {
    begin();
    try {
      body();
      commit();
    } catch (...) {
      rollback();
      throw;
    }
  }
  // True when a table or view of that name exists.
  bool has_table(const std::string& name);

  const std::filesystem::path& file() const { return file_; }
  [[noreturn]] void fail(const std::string& what) const;

 private:
  std::filesystem::path file_;
  sqlite3* connection_ = nullptr;
};

// Writes the rows of `query` (a table name or a SELECT) as CSV to `output`, atomically.
// Returns the number of data rows.
int64_t export_csv(Database& database, const std::string& query, const std::filesystem::path& output);

}  // namespace linkstyle
