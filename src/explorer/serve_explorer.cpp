// The explorer's HTTP server: cpp-httplib routes in front of linkstyle::Explorer.
#include <atomic>
#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

#include "../report/report_assets.hpp"
#include "linkstyle/errors.hpp"
#include "linkstyle/explorer_server.hpp"

namespace linkstyle {
using json = nlohmann::json;

namespace {

void send_json(httplib::Response& response, const json& body, int status = 200) {
  response.status = status;
  response.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

json parse_body(const httplib::Request& request) {
  const auto body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) throw ExplorerRequestError(400, "the request body is not valid JSON");
  return body;
}

bool is_loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

std::string status_reason(int status) {
  switch (status) {
    case 404: return "no such page";
    case 405: return "method not allowed";
    case 413: return fmt::format("the request is too large (uploads: at most {} MiB)", Explorer::max_upload_bytes >> 20);
    default: return fmt::format("HTTP {}", status);
  }
}

// Library errors are 400 answers naming the problem; anything else is a 500.
void set_error_handlers(httplib::Server& server) {
  server.set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const ExplorerRequestError& error) {
      send_json(response, {{"error", error.what()}}, error.status());
    } catch (const SettingError& error) {
      send_json(response, {{"error", error.what()}}, 400);
    } catch (const Error& error) {
      send_json(response, {{"error", error.what()}}, 400);
    } catch (const json::exception& error) {
      send_json(response, {{"error", std::string("bad request: ") + error.what()}}, 400);
    } catch (const std::exception& error) {
      send_json(response, {{"error", std::string("internal error: ") + error.what()}}, 500);
    } catch (...) {
      send_json(response, {{"error", "internal error"}}, 500);
    }
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& response) {
    if (response.body.empty()) send_json(response, {{"error", status_reason(response.status)}}, response.status);
  });
}

// The page, its script and stylesheet, the API and the study's files.
void add_routes(httplib::Server& server, Explorer& explorer) {
  server.Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(std::string(report::explorer_page()), "text/html; charset=utf-8");
  });
  server.Get("/explorer.js", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(std::string(report::explorer_script()), "text/javascript");
  });
  server.Get("/report.css", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(std::string(report::report_stylesheet()), "text/css");
  });
  server.Get("/api/study", [&explorer](const httplib::Request&, httplib::Response& response) {
    send_json(response, explorer.describe());
  });
  server.Post("/api/render", [&explorer](const httplib::Request& request, httplib::Response& response) {
    send_json(response, explorer.render(parse_body(request)));
  });
  server.Post("/api/upload", [&explorer](const httplib::Request& request, httplib::Response& response) {
    send_json(response, explorer.upload(request.body));
  });
  server.Post("/api/counterfactual", [&explorer](const httplib::Request& request, httplib::Response& response) {
    send_json(response, explorer.counterfactual(parse_body(request)));
  });
  server.Get("/api/counterfactual/progress", [&explorer](const httplib::Request&, httplib::Response& response) {
    send_json(response, explorer.counterfactual_progress());
  });
  server.Get(R"(/files/(.*))", [&explorer](const httplib::Request& request, httplib::Response& response) {
    std::string type;
    auto bytes = explorer.study_file(request.matches[1], &type);
    response.set_content(std::move(bytes), type);
  });
}

// Binds the port asked for (0: any free one); returns it.
int bind_port(httplib::Server& server, const ServeOptions& options) {
  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
    if (port < 0) throw Error(options.host, "cannot bind any port");
  } else if (!server.bind_to_port(options.host, port)) {
    throw Error(fmt::format("{}:{}", options.host, port), "cannot bind (in use, or not an address of this machine)");
  }
  return port;
}

}  // namespace

void serve_explorer(Explorer& explorer, const ServeOptions& options, const std::function<void(int)>& on_listening,
                    const std::function<bool()>& stop_requested) {
  if (!is_loopback(options.host) && !options.allow_remote)
    throw SettingError("--host", fmt::format("'{}' is not a loopback address; binding it opens the explorer to the "
                                             "network: add --allow-remote to do so",
                                             options.host));
  if (options.port < 0 || options.port > 65535) throw SettingError("--port", fmt::format("{} is not a port", options.port));
  httplib::Server server;
  const int threads = std::max(1, options.threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server.set_payload_max_length(Explorer::max_upload_bytes + 4096);
  server.set_default_headers({{"X-Content-Type-Options", "nosniff"}, {"Cache-Control", "no-store"}});

  set_error_handlers(server);
  add_routes(server, explorer);
  const int port = bind_port(server, options);
  std::atomic<bool> finished{false};
  std::thread listener([&server, &finished] {
    server.listen_after_bind();
    finished = true;
  });
  on_listening(port);
  while (!stop_requested() && !finished) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server.stop();
  listener.join();
}

}  // namespace linkstyle
