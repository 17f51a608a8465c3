package io.github.moe4j.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The parts of {@code moe4j demo}'s text that tests check, read back from the text alone.
 *
 * @param rows      the routing table, one entry per printed row, in print order
 * @param capacity  C as printed on the Capacity line, or -1 if it says unlimited
 * @param dropped   the number on the "Dropped assignments" line
 * @param experts   the expert load table, in print order
 */
record PrintedDemo(List<Row> rows, int capacity, int dropped, List<ExpertLoad> experts) {

    /**
     * One row of the routing table.
     *
     * @param token      the token index
     * @param cells      the cells between the token and |y| (token choice) or the "taken by" list (expert choice)
     * @param outputNorm |y_t|
     */
    record Row(int token, List<String> cells, double outputNorm) {
        /** How many of this row's cells say "dropped". */
        long droppedCells() {
            return cells.stream().filter(c -> c.endsWith(" dropped")).count();
        }
    }

    /**
     * One row of the expert load table.
     *
     * @param expert  e
     * @param load    assignments asked for
     * @param kept    assignments kept
     * @param dropped assignments dropped
     */
    record ExpertLoad(int expert, int load, int kept, int dropped) {}

    private static final Pattern CAPACITY = Pattern.compile("(?m)^Capacity\\s+(?:C = .* = (\\d+) (?:assignments?|tokens?) per expert|unlimited)");
    private static final Pattern DROPPED = Pattern.compile("(?m)^Dropped assignments: (\\d+)");
    private static final Pattern EXPERT_ROW = Pattern.compile("e(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+).*");

    /** Reads a token-choice or expert-choice report. */
    static PrintedDemo parse(String text) {
        String[] lines = text.split("\n", -1);
        List<Row> rows = new ArrayList<>();
        List<ExpertLoad> experts = new ArrayList<>();
        int i = 0;
        while (!lines[i].startsWith("token  ")) {
            i++;
        }
        boolean expertChoice = lines[i].contains("taken by");
        for (i++; !lines[i].isEmpty(); i++) {
            List<String> cells = new ArrayList<>(List.of(lines[i].trim().split(" {2,}")));
            int token = Integer.parseInt(cells.remove(0));
            double norm = Double.parseDouble(cells.remove(expertChoice ? 0 : cells.size() - 1));
            if (expertChoice) {
                cells = List.of(cells.get(0).split(", "));
            }
            rows.add(new Row(token, cells, norm));
        }
        while (!lines[i].startsWith("expert  load  kept  dropped")) {
            i++;
        }
        for (i++; lines[i].startsWith("e"); i++) {
            Matcher m = EXPERT_ROW.matcher(lines[i]);
            if (!m.matches()) {
                throw new IllegalArgumentException("not an expert row: " + lines[i]);
            }
            experts.add(new ExpertLoad(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
                    Integer.parseInt(m.group(3)), Integer.parseInt(m.group(4))));
        }
        Matcher c = CAPACITY.matcher(text);
        Matcher d = DROPPED.matcher(text);
        if (!c.find() || !d.find()) {
            throw new IllegalArgumentException("no Capacity or Dropped line in:\n" + text);
        }
        int capacity = c.group(1) == null ? -1 : Integer.parseInt(c.group(1));
        return new PrintedDemo(rows, capacity, Integer.parseInt(d.group(1)), experts);
    }
}
