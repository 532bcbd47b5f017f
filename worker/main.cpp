// zfarm-worker: the worker program, a thin main over zfarm::worker.
#include "worker_program.hpp"

int main(int argc, char** argv) {
    return zfarm::worker_program(argc, argv, "zfarm-worker");
}
