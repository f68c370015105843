"""Shortest routes between warehouses and hubs on the road network.

The network is small and dense, so distances are kept in a flat row-major matrix: the distance from
node i to node j is at index i * n + j, with -1 where there is no direct road.
"""

from typing import List

NO_ROAD: int = -1
UNREACHABLE: int = 1000000000


def shortest_distances(matrix: List[int], n: int, source: int) -> List[int]:
    """Dijkstra's algorithm with a linear scan for the closest open node (fine for dense graphs)."""
    dist: List[int] = []
    done: List[bool] = []
    for i in range(n):
        dist.append(UNREACHABLE)
        done.append(False)
    dist[source] = 0
    for step in range(n):
        closest: int = -1
        for i in range(n):
            if done[i]:
                continue
            if closest < 0:
                closest = i
            elif dist[i] < dist[closest]:
                closest = i
        if closest < 0:
            break
        if dist[closest] == UNREACHABLE:
            break
        done[closest] = True
        for j in range(n):
            road: int = matrix[closest * n + j]
            if road == NO_ROAD:
                continue
            through: int = dist[closest]
            through += road
            if through < dist[j]:
                dist[j] = through
    return dist


def reachable_count(dist: List[int]) -> int:
    count: int = 0
    for d in dist:
        if d != UNREACHABLE:
            count += 1
    return count


def farthest(dist: List[int]) -> int:
    """Index of the farthest reachable node."""
    best: int = -1
    for i in range(len(dist)):
        if dist[i] == UNREACHABLE:
            continue
        if best < 0:
            best = i
        elif dist[i] > dist[best]:
            best = i
    return best


def main() -> None:
    n: int = 4
    roads: List[int] = [0, 12, -1, 30, 12, 0, 9, -1, -1, 9, 0, 7, 30, -1, 7, 0]
    dist: List[int] = shortest_distances(roads, n, 0)
    print(dist)
    print(reachable_count(dist))
    print(farthest(dist))


if __name__ == "__main__":
    main()
