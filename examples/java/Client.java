// A partner client in Java 17 with the JDK only (java.net.http and
// SHA256withRSA): log in, sign, create an order, read it back, refresh the
// token. See examples/README.md.
//
//   BASE_URL=http://127.0.0.1:8080 CLIENT_ID=... CLIENT_SECRET=... \
//   PRIVATE_KEY=private.pem java examples/java/Client.java
//
// The JDK has no JSON library: requests are built with a small escaper and
// the few fields read back are picked out with a regular expression. A real
// integration would use its JSON library of choice.

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
import java.util.Base64;
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

        // 2-3. Sign and create an order.
        String purchaseOrder = "PO-JAVA-" + System.nanoTime();
        String order = "{\"customer_code\":\"CUST-001\",\"site_code\":\"SITE-001\","
                + "\"sales_name\":\"John Doe\",\"address\":\"Jl. Sudirman No. 1, Jakarta\","
                + "\"purchase_order_no\":" + quote(purchaseOrder) + ","
                + "\"products\":[{\"product_code\":\"PRD-001\",\"quantity\":2,\"uom\":\"PCS\","
                + "\"unit_price\":\"150000.50\"}]}";
        String created = signed(key, token, "POST", "/api/v1/sales-orders", order);
        String id = field(created, "id");
        System.out.println("created " + id);

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
    }

    /** SHA256withRSA over "client_id|timestamp", standard base64. */
    static String sign(PrivateKey key, String timestamp) throws Exception {
        Signature signer = Signature.getInstance("SHA256withRSA");
        signer.initSign(key);
        signer.update((CLIENT_ID + "|" + timestamp).getBytes(StandardCharsets.UTF_8));
        return Base64.getEncoder().encodeToString(signer.sign());
    }

    /** A signed request; the timestamp is read once, for the string and the header. */
    static String signed(PrivateKey key, String token, String method, String path, String body)
            throws Exception {
        String timestamp = Long.toString(System.currentTimeMillis() / 1000);
        HttpRequest request = HttpRequest.newBuilder(URI.create(BASE_URL + path))
                .header("Authorization", "Bearer " + token)
                .header("Content-Type", "application/json")
                .header("X-CLIENT-ID", CLIENT_ID)
                .header("X-TIMESTAMP", timestamp)
                .header("X-SIGNATURE", sign(key, timestamp))
                .method(method, body == null
                        ? HttpRequest.BodyPublishers.noBody()
                        : HttpRequest.BodyPublishers.ofString(body))
                .build();
        return send(request);
    }

    static String post(String path, String json) throws Exception {
        return send(HttpRequest.newBuilder(URI.create(BASE_URL + path))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json))
                .build());
    }

    static String send(HttpRequest request) throws Exception {
        HttpResponse<String> response = HTTP.send(request, HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() / 100 != 2) {
            throw new IllegalStateException(request.method() + " " + request.uri().getPath()
                    + ": " + response.statusCode() + " " + response.body());
        }
        return response.body();
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

    /** The first string field `name` in a JSON text. */
    static String field(String json, String name) {
        var matcher = Pattern.compile("\"" + name + "\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(json);
        if (!matcher.find()) throw new IllegalStateException("no \"" + name + "\" in " + json);
        return matcher.group(1);
    }
}
