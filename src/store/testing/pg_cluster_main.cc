// custody_pg_cluster start|stop DIR: the CTest fixture around the PostgreSQL tests
// (store/testing/pg_cluster.h). `start` returns once the server accepts connections; the server
// keeps running until `stop`.
#include <cstdio>
#include <cstring>

#include "store/testing/pg_cluster.h"

int main(int argc, char** argv) {
  using custody::store::testing::PgCluster;
  if (argc != 3 || (std::strcmp(argv[1], "start") != 0 && std::strcmp(argv[1], "stop") != 0)) {
    std::fprintf(stderr, "usage: custody_pg_cluster start|stop DIR\n");
    return 2;
  }
  custody::Status st = std::strcmp(argv[1], "start") == 0 ? PgCluster::StartDetached(argv[2])
                                                          : PgCluster::StopDetached(argv[2]);
  if (!st.ok()) {
    std::fprintf(stderr, "custody_pg_cluster: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
