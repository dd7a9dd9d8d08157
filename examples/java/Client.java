// A partner client in Java 17 with the JDK only (java.net.http and
// SHA256withRSA): log in, sign, create an order, read it back, refresh the
// token, amend the order, send a batch. See "Signing in your language" in
// the guide (/docs/guide).
//
//   BASE_URL=http://127.0.0.1:8080 CLIENT_ID=... CLIENT_SECRET=... \
//   PRIVATE_KEY=private.pem java Client.java
//
// The JDK has no JSON library: requests are built with a small escaper and
// the few fields read back are picked out with a regular expression. A real
// integration would use its JSON library of choice.

import java.math.BigDecimal;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.UUID;
import java.util.regex.Pattern;

public class Client {
    static final String BASE_URL = System.getenv("BASE_URL").replaceAll("/$", "");
    static final String CLIENT_ID = System.getenv("CLIENT_ID");
    static final HttpClient HTTP = HttpClient.newHttpClient();

    public static void main(String[] args) throws Exception {
        PrivateKey key = readPkcs8(Path.of(System.getenv("PRIVATE_KEY")));

        // 1. Log in.
        String login = post("/api/v1/auth/login", "{\"client_id\":" + quote(CLIENT_ID)
                + ",\"client_secret\":" + quote(System.getenv("CLIENT_SECRET")) + "}");
        String token = field(login, "token");
        System.out.println("logged in as " + CLIENT_ID);

        // 2-3. Sign and create an order. Its ETag (its version, "1") is kept
        // for the amendment.
        String purchaseOrder = "PO-JAVA-" + System.nanoTime();
        HttpResponse<String> created = send(signedRequest(key, token, "POST", "/api/v1/sales-orders",
                order(purchaseOrder, 2)));
        String id = field(created.body(), "id");
        String etag = created.headers().firstValue("ETag").orElse("");
        if (!etag.equals("\"1\"")) throw new IllegalStateException("created with ETag " + etag);
        System.out.println("created " + id + " (ETag " + etag + ")");

        // 4. Read it back.
        String readBack = signed(key, token, "GET", "/api/v1/sales-orders/" + id, null);
        if (!purchaseOrder.equals(field(readBack, "purchase_order_no"))) {
            throw new IllegalStateException("read back a different order: " + readBack);
        }
        System.out.println("read back " + id + ": purchase order " + purchaseOrder);

        // 5. Refresh the token (each token refreshes once), and use the new one.
        token = field(post("/api/v1/auth/refresh", "{\"token\":" + quote(token) + "}"), "token");
        signed(key, token, "GET", "/api/v1/sales-orders?limit=1", null);
        System.out.println("refreshed the token and listed orders with it");

        // 6. Amend the order: a whole create body (the lines to keep too),
        // here with quantity 3, made only if the order is still at the version
        // we read (If-Match with the create's ETag).
        String amended = order(purchaseOrder, 3);
        HttpResponse<String> answer = send(signedRequest(key, token, "PUT", "/api/v1/sales-orders/" + id,
                amended, "If-Match", etag));
        if (number(answer.body(), "version").compareTo(BigDecimal.valueOf(2)) != 0
                || number(answer.body(), "quantity").compareTo(BigDecimal.valueOf(3)) != 0
                || !answer.headers().firstValue("ETag").orElse("").equals("\"2\"")) {
            throw new IllegalStateException("the amendment is not version 2 with quantity 3: "
                    + answer.headers().map() + " " + answer.body());
        }
        System.out.println("amended " + id + ": quantity 3, ETag \"2\"");

        // The same amendment with the old ETag is refused: someone (here, we)
        // changed the order since version 1, and nothing is overwritten.
        HttpResponse<String> stale = HTTP.send(signedRequest(key, token, "PUT", "/api/v1/sales-orders/" + id,
                amended, "If-Match", etag), HttpResponse.BodyHandlers.ofString());
        if (stale.statusCode() != 412 || !field(stale.body(), "code").equals("VERSION_MISMATCH")) {
            throw new IllegalStateException("a stale If-Match answered " + stale.statusCode() + " "
                    + stale.body());
        }
        System.out.println("stale If-Match " + etag + " refused as expected: 412 VERSION_MISMATCH"
                + " (the order is at " + stale.headers().firstValue("ETag").orElse("?") + ")");

        // 7. A batch of two orders with one Idempotency-Key. The body is made
        // once: a retry must send the same bytes with the same key.
        String batch = "{\"orders\":[" + order(purchaseOrder + "-1", 1) + ","
                + order(purchaseOrder + "-2", 2) + "],\"atomic\":false}";
        String idempotencyKey = UUID.randomUUID().toString();
        String items = send(signedRequest(key, token, "POST", "/api/v1/sales-orders/batch", batch,
                "Idempotency-Key", idempotencyKey)).body();
        // An order's status is a string; only the items' statuses are numbers.
        if (!all(items, "\"status\"\\s*:\\s*(\\d+)").equals(List.of("201", "201"))) {
            throw new IllegalStateException("the batch did not store both orders: " + items);
        }
        List<String> ids = all(items, "\"id\"\\s*:\\s*\"([^\"]*)\"");
        System.out.println("sent a batch: created " + String.join(", ", ids));

        // Sent again (as after a lost answer): the same orders, not two more.
        HttpResponse<String> again = send(signedRequest(key, token, "POST", "/api/v1/sales-orders/batch",
                batch, "Idempotency-Key", idempotencyKey));
        if (!again.headers().firstValue("Idempotent-Replayed").orElse("").equals("true")
                || !all(again.body(), "\"id\"\\s*:\\s*\"([^\"]*)\"").equals(ids)) {
            throw new IllegalStateException("the batch sent again answered "
                    + again.headers().map() + " " + again.body());
        }
        System.out.println("sent the batch again: Idempotent-Replayed, the same orders");
    }

    /** A create body (also an amendment's, and each order of a batch). */
    static String order(String purchaseOrder, int quantity) {
        return "{\"customer_code\":\"CUST-001\",\"site_code\":\"SITE-001\","
                + "\"sales_name\":\"John Doe\",\"address\":\"Jl. Sudirman No. 1, Jakarta\","
                + "\"purchase_order_no\":" + quote(purchaseOrder) + ","
                + "\"products\":[{\"product_code\":\"PRD-001\",\"quantity\":" + quantity + ",\"uom\":\"PCS\","
                + "\"unit_price\":\"150000.50\"}]}";
    }

    /** SHA256withRSA over "client_id|timestamp", standard base64. */
    static String sign(PrivateKey key, String timestamp) throws Exception {
        Signature signer = Signature.getInstance("SHA256withRSA");
        signer.initSign(key);
        signer.update((CLIENT_ID + "|" + timestamp).getBytes(StandardCharsets.UTF_8));
        return Base64.getEncoder().encodeToString(signer.sign());
    }

    /** A signed request answered with a 2xx; its body. */
    static String signed(PrivateKey key, String token, String method, String path, String body)
            throws Exception {
        return send(signedRequest(key, token, method, path, body)).body();
    }

    /**
     * A signed request, with extra headers as name, value, ...; the timestamp
     * is read once, for the string and the header.
     */
    static HttpRequest signedRequest(PrivateKey key, String token, String method, String path, String body,
            String... headers) throws Exception {
        String timestamp = Long.toString(System.currentTimeMillis() / 1000);
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(BASE_URL + path))
                .header("Authorization", "Bearer " + token)
                .header("Content-Type", "application/json")
                .header("X-CLIENT-ID", CLIENT_ID)
                .header("X-TIMESTAMP", timestamp)
                .header("X-SIGNATURE", sign(key, timestamp))
                .method(method, body == null
                        ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body));
        if (headers.length > 0) request.headers(headers);
        return request.build();
    }

    static String post(String path, String json) throws Exception {
        return send(HttpRequest.newBuilder(URI.create(BASE_URL + path))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json))
                .build()).body();
    }

    /** Sends a request that must be answered with a 2xx. */
    static HttpResponse<String> send(HttpRequest request) throws Exception {
        HttpResponse<String> response = HTTP.send(request, HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() / 100 != 2) {
            throw new IllegalStateException(request.method() + " " + request.uri().getPath()
                    + ": " + response.statusCode() + " " + response.body());
        }
        return response;
    }

    /** Reads a PKCS#8 PEM private key ("BEGIN PRIVATE KEY", as `keygen` writes). */
    static PrivateKey readPkcs8(Path path) throws Exception {
        String pem = Files.readString(path)
                .replaceAll("-----(BEGIN|END) PRIVATE KEY-----", "")
                .replaceAll("\\s", "");
        byte[] der = Base64.getDecoder().decode(pem);
        return KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(der));
    }

    static String quote(String text) {
        StringBuilder quoted = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            switch (c) {
                case '"' -> quoted.append("\\\"");
                case '\\' -> quoted.append("\\\\");
                default -> {
                    if (c < 0x20) quoted.append(String.format("\\u%04x", (int) c));
                    else quoted.append(c);
                }
            }
        }
        return quoted.append('"').toString();
    }

    /** The first number field `name` in a JSON text. */
    static BigDecimal number(String json, String name) {
        var matcher = Pattern.compile("\"" + name + "\"\\s*:\\s*(-?[0-9][0-9.eE+-]*)").matcher(json);
        if (!matcher.find()) throw new IllegalStateException("no number \"" + name + "\" in " + json);
        return new BigDecimal(matcher.group(1));
    }

    /** The first group of every match of `regex` in a JSON text. */
    static List<String> all(String json, String regex) {
        List<String> found = new ArrayList<>();
        var matcher = Pattern.compile(regex).matcher(json);
        while (matcher.find()) found.add(matcher.group(1));
        return found;
    }

    /** The first string field `name` in a JSON text. */
    static String field(String json, String name) {
        var matcher = Pattern.compile("\"" + name + "\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(json);
        if (!matcher.find()) throw new IllegalStateException("no \"" + name + "\" in " + json);
        return matcher.group(1);
    }
}
