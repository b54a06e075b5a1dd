// The seed platform's own client (seed 001): Java, no credentials, `reRun` as a
// form-urlencoded PUT and `resume` as a PUT with a JSON content type and no body, sent as the
// seed's RestTemplate sends them, here with java.net.http (Java 17, no build tool). The
// server runs with --anonymous-user, as an operator would choose for such clients.
//
// Usage: java SeedPlatform.java BASE — exits non-zero when an answer is not the expected one.

import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class SeedPlatform {
    static final HttpClient HTTP = HttpClient.newHttpClient();
    static String base;

    static String send(String method, String path, String type, String body, int expected) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(base + path));
        if (type != null) {
            request.header("Content-Type", type);
        }
        request.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        HttpResponse<String> response = HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != expected) {
            throw new AssertionError(method + " " + path + ": " + response.statusCode() + " " + response.body());
        }
        return response.body();
    }

    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
        if (!m.find()) {
            throw new AssertionError("no " + name + " in " + json);
        }
        return m.group(1);
    }

    static String form(String... pairs) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < pairs.length; i += 2) {
            if (out.length() > 0) {
                out.append('&');
            }
            out.append(URLEncoder.encode(pairs[i], StandardCharsets.UTF_8)).append('=')
                .append(URLEncoder.encode(pairs[i + 1], StandardCharsets.UTF_8));
        }
        return out.toString();
    }

    public static void main(String[] args) throws Exception {
        base = args[0];
        String key = "seed_java_" + System.nanoTime();
        String model = "<definitions xmlns=\"http://www.omg.org/spec/BPMN/20100524/MODEL\" xmlns:flowable=\"http://flowable.org/bpmn\">"
            + "<process id=\"" + key + "\"><startEvent id=\"s\"/><sequenceFlow sourceRef=\"s\" targetRef=\"work\"/>"
            + "<serviceTask id=\"work\" name=\"Work\" flowable:type=\"external-worker\" flowable:topic=\"" + key + "\"/>"
            + "<sequenceFlow sourceRef=\"work\" targetRef=\"e\"/><endEvent id=\"e\"/></process></definitions>";
        send("POST", "/model", "application/xml", model, 201);
        String started = send("POST", "/process", "application/json",
            "{\"key\":\"" + key + "\",\"processName\":\"seed client\",\"variables\":{},\"debug\":true}", 200);
        String process = field(started, "id");

        // The task fails for good, and the process in debug mode waits for an operator.
        String jobs = send("POST", "/flowable-rest/external-job-api/acquire/jobs", "application/json",
            "{\"topic\":\"" + key + "\",\"lockDuration\":\"PT1M\",\"workerId\":\"java\"}", 200);
        String job = field(jobs, "id");
        send("POST", "/flowable-rest/external-job-api/acquire/jobs/" + job + "/fail", "application/json",
            "{\"workerId\":\"java\",\"errorMessage\":\"disk full\",\"retries\":0}", 204);
        if (!field(send("GET", "/process/" + process, null, null, 200), "processStatus").equals("debug")) {
            throw new AssertionError("the process does not wait in debug mode");
        }
        String task = field(send("GET", "/task?processInstanceId=" + process, null, null, 200), "taskId");

        // Seed 001: reRun, form-urlencoded.
        String rerun = send("PUT", "/task/" + task + "/reRun", "application/x-www-form-urlencoded",
            form("queueType", "start", "parameters", "{\"disk\":\"bigger\"}", "outputs", "{}"), 200);
        if (!field(rerun, "status").equals("start.begin") && !field(rerun, "status").equals("produce.success")) {
            throw new AssertionError("reRun did not queue the start again: " + rerun);
        }
        jobs = send("POST", "/flowable-rest/external-job-api/acquire/jobs", "application/json",
            "{\"topic\":\"" + key + "\",\"lockDuration\":\"PT1M\",\"workerId\":\"java\"}", 200);
        if (!jobs.contains("\"bigger\"")) {
            throw new AssertionError("the job run again does not carry the new parameters: " + jobs);
        }
        send("POST", "/flowable-rest/external-job-api/acquire/jobs/" + field(jobs, "id") + "/fail", "application/json",
            "{\"workerId\":\"java\",\"errorMessage\":\"still full\",\"retries\":0}", 204);

        // Seed 001: resume, a JSON content type and no body.
        String resumed = send("PUT", "/task/" + task + "/resume", "application/json", null, 200);
        System.out.println("resume answered " + resumed);
        String after = send("GET", "/process/" + process, null, null, 200);
        // `resume` ends the debugging of the failed task ("结束任务"): the process fails as it would have.
        if (!field(after, "processStatus").equals("failed")) {
            throw new AssertionError("the process did not leave debug mode: " + after);
        }
        System.out.println("seed platform client: reRun and resume without credentials, as the seed sends them: OK");
    }
}
