/* SSL_write of SIZE bytes, COUNT times, from a client to a server in the
 * same process over a BIO pair: TLS 1.3 with the system libssl and no
 * network, so what is timed is the library call (and, traced, the probes
 * on it). Each write is read back by the server with SSL_read.
 *
 *   ssl_loop SIZE COUNT   prints the mean ns per SSL_write + SSL_read
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void die(const char *what)
{
	fprintf(stderr, "ssl_loop: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* A throwaway self-signed certificate for the server end. */
static void self_signed(SSL_CTX *ctx)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();

	if (!key || !cert)
		die("key");
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC, (const unsigned char *)"bench", -1,
				   -1, 0);
	X509_set_issuer_name(cert, X509_get_subject_name(cert));
	if (!X509_sign(cert, key, EVP_sha256()) || !SSL_CTX_use_certificate(ctx, cert) ||
	    !SSL_CTX_use_PrivateKey(ctx, key))
		die("certificate");
}

/* Moves what one end wrote into the other end's BIO pair half. */
static int pump(SSL *client, SSL *server)
{
	int progress = 0;
	int rc;

	rc = SSL_do_handshake(client);
	if (rc == 1 || SSL_get_error(client, rc) == SSL_ERROR_WANT_READ)
		progress++;
	rc = SSL_do_handshake(server);
	if (rc == 1 || SSL_get_error(server, rc) == SSL_ERROR_WANT_READ)
		progress++;
	return progress;
}

int main(int argc, char **argv)
{
	size_t size, count;
	SSL_CTX *client_ctx, *server_ctx;
	SSL *client, *server;
	BIO *client_bio, *server_bio;
	unsigned char *out, *in;
	struct timespec start, end;

	if (argc != 3)
		die("usage: ssl_loop SIZE COUNT");
	size = strtoul(argv[1], NULL, 10);
	count = strtoul(argv[2], NULL, 10);
	client_ctx = SSL_CTX_new(TLS_client_method());
	server_ctx = SSL_CTX_new(TLS_server_method());
	if (!client_ctx || !server_ctx)
		die("context");
	self_signed(server_ctx);
	client = SSL_new(client_ctx);
	server = SSL_new(server_ctx);
	/* A pair large enough for one 64 KiB write and its records. */
	if (!BIO_new_bio_pair(&client_bio, 1 << 20, &server_bio, 1 << 20))
		die("bio pair");
	SSL_set_bio(client, client_bio, client_bio);
	SSL_set_bio(server, server_bio, server_bio);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);
	for (int i = 0; i < 100 && !(SSL_is_init_finished(client) && SSL_is_init_finished(server)); i++)
		pump(client, server);
	if (!SSL_is_init_finished(client) || !SSL_is_init_finished(server))
		die("handshake");

	out = malloc(size);
	in = malloc(size);
	for (size_t i = 0; i < size; i++)
		out[i] = 'a' + i % 26;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (size_t n = 0; n < count; n++) {
		size_t got = 0;

		if (SSL_write(client, out, (int)size) != (int)size)
			die("SSL_write");
		while (got < size) {
			int rc = SSL_read(server, in + got, (int)(size - got));

			if (rc <= 0)
				die("SSL_read");
			got += rc;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	printf("%.1f\n", ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / (double)count);
	return 0;
}
