/* static_payload: a statically linked payload for --chroot tests (it needs
 * nothing inside the new root). Prints its working directory and whether
 * the host's /etc/hostname is visible, then sleeps.
 *   static_payload SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char** argv) {
  char cwd[256] = "?";
  if (getcwd(cwd, sizeof cwd) == NULL) cwd[0] = '?';
  printf("cwd=%s host-visible=%s\n", cwd, access("/etc/hostname", F_OK) == 0 ? "yes" : "no");
  fflush(stdout);
  sleep(argc > 1 ? (unsigned)atoi(argv[1]) : 1000);
  return 0;
}
