/* idle: the benchmark's payload; sleeps until a signal ends it. */
#include <unistd.h>

int main(void) {
  for (;;) pause();
}
