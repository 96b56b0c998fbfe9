// An application in another language: Java 17's own HttpClient, as built by default (HTTP/2 preferred, so a
// plain-http request asks to upgrade with "Upgrade: h2c"), calling semsearch serve's REST API and its proxy.
// Run as a single source file: java SearchClient.java BASE_URL TOKEN INDEX TEXT
// Prints, for each request, one line "<label> <status> <body>" (the body on one line), and nothing else.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class SearchClient {
    static String quoted(String text) {
        return "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static void post(HttpClient client, String label, String url, String token, String body) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        if (token != null) {
            request.header("Authorization", "Bearer " + token);
        }
        HttpResponse<String> answer = client.send(request.build(), HttpResponse.BodyHandlers.ofString());
        System.out.println(label + " " + answer.statusCode() + " " + answer.body().replace("\n", " "));
    }

    public static void main(String[] args) throws Exception {
        String base = args[0], token = args[1], index = args[2], text = quoted(args[3]);
        HttpClient client = HttpClient.newHttpClient();
        post(client, "search", base + "/v1/search", token,
             "{\"index\": " + quoted(index) + ", \"text\": " + text + ", \"k\": 5, \"mode\": \"hybrid\"}");
        post(client, "neural", base + "/" + index + "/_search", null,
             "{\"size\": 5, \"_source\": false, \"query\": {\"neural\": {\"embedding\": {\"query_text\": " + text
             + ", \"k\": 5}}}}");
    }
}
