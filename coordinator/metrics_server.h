// Serves Prometheus metrics over HTTP: GET /metrics answers the text format
// (version 0.0.4) of a render callback; any other path is 404. It listens on
// loopback only (127.0.0.1), on its own thread; one small server, separate
// from the client APIs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"

namespace httplib {
class Server;
}

namespace unicorn {

class MetricsServer {
 public:
  ~MetricsServer();  // stops and joins

  // Listens on 127.0.0.1:`port` (0 = any free port; see port()). Errors name
  // the port (for example when it is in use).
  static StatusOr<std::unique_ptr<MetricsServer>> Start(int port,
                                                        std::function<std::string()> render);
  int port() const { return port_; }

 private:
  MetricsServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace unicorn
