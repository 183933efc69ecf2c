// linkstyle/explorer_server.hpp
//
// WHAT THIS REPRESENTS
//   The explorer's HTTP server (`linkstyle serve`): the explorer's page and script at /, its JSON
//   API (/api/study, /api/render, /api/upload, /api/counterfactual) and the study's files under
//   /files/, served by cpp-httplib from a pool of threads. Built as linkstyle_server, apart from
//   the library, so that the library does not depend on the HTTP library.
// REQUIRES
//   An Explorer; a loopback host unless allow_remote.
// ENSURES
//   A bad request gets a 4xx with {"error": reason} (ExplorerRequestError's status; 400 for bad
//   JSON or a linkstyle::Error; 413 for a body over the upload limit) and the server goes on; an
//   unexpected exception gets a 500. Nothing is written to disk.
#pragma once

#include <functional>
#include <string>

#include "linkstyle/explorer.hpp"

namespace linkstyle {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8750;              // 0: any free port
  bool allow_remote = false;    // needed for a host other than loopback
  int threads = 8;              // connections served at once
};

// Serves the explorer until `stop_requested` returns true (polled every 100 ms); calls
// on_listening(port) once the socket is bound. Throws Error when the address cannot be bound or
// a non-loopback host is asked for without allow_remote.
void serve_explorer(Explorer& explorer, const ServeOptions& options, const std::function<void(int)>& on_listening,
                    const std::function<bool()>& stop_requested);

}  // namespace linkstyle
